import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';
import { startDaemon, type Daemon } from './processes';

/** A nats-server with JetStream on a loopback port, for the demo, the tests and the benchmarks. */
export interface LocalNatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store. */
  restart(): Promise<void>;
  /** kill -9, and wait for the exit (`restart` brings it back on the same port and store). */
  kill9(): Promise<void>;
  /** Stops it and removes its store when the store was temporary. */
  dispose(): Promise<void>;
  /** Process id of the running server. */
  readonly pid: number | undefined;
}

export interface NatsServerOptions {
  /** JetStream store; a temporary folder when absent. */
  storeDir?: string;
  port?: number;
  /** A configuration file (accounts, permissions, TLS); port and store are still set by flags. */
  configFile?: string;
  binary?: string;
  /** More flags, e.g. the cluster ones `startNatsCluster` sets. */
  extraArgs?: string[];
}

/** Starts `nats-server -js` on 127.0.0.1 and resolves once it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<LocalNatsServer> {
  const temporary = options.storeDir === undefined;
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'qy-nats-'));
  const port = options.port ?? (await freePort());
  let daemon: Daemon | undefined;

  const launch = async () => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir];
    if (options.configFile) args.unshift('-c', options.configFile);
    if (options.extraArgs) args.push(...options.extraArgs);
    daemon = await startDaemon(options.binary ?? 'nats-server', args, () => waitForInfo(port, 15_000));
  };
  const stop = async () => daemon?.stop();

  await launch();
  return {
    get pid() {
      return daemon?.child.pid;
    },
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async kill9() {
      const child = daemon?.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await gone;
    },
    async dispose() {
      await stop();
      if (temporary) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** A JetStream cluster of nats-servers on loopback ports: `url` lists every server, as clients are configured. */
export interface LocalNatsCluster {
  url: string;
  servers: LocalNatsServer[];
  dispose(): Promise<void>;
}

/**
 * Starts `size` nats-servers clustered with JetStream (routes between all, one cluster name) and resolves
 * once JetStream answers, i.e. its meta group has a leader — the setup the README describes for production.
 */
export async function startNatsCluster(size = 3, options: { extraArgs?: string[] } = {}): Promise<LocalNatsCluster> {
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
  const servers: LocalNatsServer[] = [];
  const dispose = async () => {
    for (const s of servers) await s.dispose();
  };
  try {
    // Started together: each waits for routes to the others before its JetStream comes up.
    servers.push(...(await Promise.all(clusterPorts.map((cport, i) => startNatsServer({ extraArgs: ['--server_name', `qy-nats-${i + 1}`, '--cluster_name', 'qy', '--cluster', `nats://127.0.0.1:${cport}`, '--routes', routes, ...(options.extraArgs ?? [])] })))));
    const url = servers.map((s) => s.url).join(',');
    await waitForJetStream(servers.map((s) => s.url));
    return { url, servers, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Resolves when a TCP connection to the port receives the server's INFO line. */
async function waitForInfo(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      const done = (value: boolean) => {
        socket.destroy();
        resolve(value);
      };
      socket.once('data', (d) => done(d.toString().startsWith('INFO')));
      socket.once('error', () => done(false));
      socket.setTimeout(1_000, () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One site of a local federation: its nats-server, the URL its own services use and the federation link's. */
export interface LocalNatsSite {
  name: string;
  /** For the site's scheduler and agents: connections without credentials land in the site's own account. */
  url: string;
  /** For the federation link (QY_FEDERATION_NATS_URL): the shared federation account, across the gateways. */
  fedUrl: string;
  fedUser: string;
  fedPassword: string;
  server: LocalNatsServer;
}

export interface LocalNatsFederation {
  sites: LocalNatsSite[];
  site(name: string): LocalNatsSite;
  dispose(): Promise<void>;
}

/** The NATS account of a site's own services (its streams, buckets and subjects stay inside it). */
export function siteAccountOf(site: string): string {
  return `QY_SITE_${site.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** The nats-server configuration of one site of a federation: README "joining two real sites" shows the same. */
export function siteServerConfig(site: { name: string; clusterPort: number; gatewayPort: number }, others: { name: string; gatewayPort: number }[], fed: { user: string; password: string }): string {
  // Every server of a super-cluster knows every account: the JetStream meta leader answers for all of them.
  return [
    `server_name: ${site.name}`,
    'accounts {',
    ...[site, ...others].map((s) => `  ${siteAccountOf(s.name)}: { jetstream: enabled, users: [ { user: "qy-${s.name}", password: "local" } ] }`),
    `  QY_FED: { jetstream: enabled, users: [ { user: "${fed.user}", password: "${fed.password}" } ] }`,
    '}',
    // The site's scheduler and agents connect without credentials, as on a lone site: they land in its account.
    `no_auth_user: qy-${site.name}`,
    // JetStream in a super-cluster runs clustered; a one-server site routes to itself.
    `cluster { name: ${site.name}, listen: 127.0.0.1:${site.clusterPort}, routes: [ nats://127.0.0.1:${site.clusterPort} ] }`,
    `gateway { name: ${site.name}, listen: 127.0.0.1:${site.gatewayPort}, gateways: [ ${others.map((o) => `{ name: ${o.name}, url: "nats://127.0.0.1:${o.gatewayPort}" }`).join(', ')} ] }`,
    '',
  ].join('\n');
}

/**
 * Starts one nats-server per site, joined by gateways into a super-cluster, each with the site's own account
 * (default for unauthenticated connections) and the shared federation account QY_FED. Resolves once
 * JetStream answers in both accounts at every site.
 */
export async function startNatsFederation(names: string[]): Promise<LocalNatsFederation> {
  const { writeFileSync } = await import('node:fs');
  const ports = await Promise.all(names.map(async (name) => ({ name, clusterPort: await freePort(), gatewayPort: await freePort() })));
  const fed = { user: 'fed', password: 'fed-secret' };
  const dir = mkdtempSync(join(tmpdir(), 'qy-fed-'));
  const sites: LocalNatsSite[] = [];
  const dispose = async () => {
    for (const s of sites) await s.server.dispose();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const servers = await Promise.all(
      ports.map((p) => {
        const configFile = join(dir, `${p.name}.conf`);
        writeFileSync(configFile, siteServerConfig(p, ports.filter((o) => o.name !== p.name), fed));
        return startNatsServer({ configFile });
      }),
    );
    for (const [i, server] of servers.entries()) {
      const { name } = ports[i];
      sites.push({ name, url: server.url, fedUrl: server.url, fedUser: fed.user, fedPassword: fed.password, server });
    }
    for (const s of sites) {
      await waitForJetStream([s.url]);
      await waitForJetStream([s.url], fed);
    }
    return { sites, site: (name) => sites.find((s) => s.name === name)!, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Resolves once JetStream answers for the account of these credentials (its meta group has a leader). */
async function waitForJetStream(servers: string[], auth: { user?: string; password?: string } = {}, timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers, user: auth.user, pass: auth.password });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`JetStream did not come up: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await nc.close();
  }
}
