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
export async function startNatsCluster(size = 3): Promise<LocalNatsCluster> {
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
  const servers: LocalNatsServer[] = [];
  const dispose = async () => {
    for (const s of servers) await s.dispose();
  };
  try {
    // Started together: each waits for routes to the others before its JetStream comes up.
    servers.push(...(await Promise.all(clusterPorts.map((cport, i) => startNatsServer({ extraArgs: ['--server_name', `qy-nats-${i + 1}`, '--cluster_name', 'qy', '--cluster', `nats://127.0.0.1:${cport}`, '--routes', routes] })))));
    const url = servers.map((s) => s.url).join(',');
    const nc = await connect({ servers: servers.map((s) => s.url) });
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await (await jetstreamManager(nc)).getAccountInfo();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`JetStream cluster did not form: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      await nc.close();
    }
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
