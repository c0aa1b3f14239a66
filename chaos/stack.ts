import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsCluster, type LocalNatsCluster } from '../harness/nats-server';
import { freePort } from '../harness/ports';
import { startPostgres, type LocalPostgres } from '../harness/postgres';
import { spawnTs, type ChildService } from '../harness/processes';
import { writeTempTenantsFile } from '../harness/stack';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy';
import { waitUntil } from '../harness/wait';
import { SchedulerClient } from '../src/client';

const GiB = 1024 ** 3;

/**
 * Liveness and leadership of the campaign's stack. A node is declared down (its work requeued) only after a
 * silence longer than any agent fault the campaign injects lasts, restart included: the README's promise for
 * a partition longer than that is weaker (an agent cut off keeps running what it has).
 */
export const CHAOS_TIMINGS = {
  heartbeatIntervalMs: 500,
  suspectAfterMs: 3_000,
  downAfterMs: 15_000,
  leaseDurationMs: 3_000,
  leaseRenewDeadlineMs: 2_000,
  leaseRetryMs: 500,
};

/** The longest an agent fault (kill, pause or partition) may last, restart excluded; well under downAfterMs. */
export const MAX_AGENT_FAULT_MS = 4_000;

/** One process of the stack that talks to NATS through its own proxies (one per NATS server): it can be cut off. */
export interface ProxiedProcess {
  name: string;
  proxies: TcpProxy[];
  /** The running process; replaced on restart. */
  svc: ChildService;
  start(): Promise<void>;
}

export interface ChaosStackOptions {
  agents: number;
  nodesPerAgent: number;
  /** Where the tasks append their history. */
  workDir: string;
  log: (line: string) => void;
}

export interface ChaosStack {
  nats: LocalNatsCluster;
  postgres: LocalPostgres;
  replicas: (ProxiedProcess & { url: string; replicaId: string })[];
  agents: ProxiedProcess[];
  tenantToken: string;
  operatorToken: string;
  /** A client of the tenant that follows the leader across both replicas. */
  client(token?: string): SchedulerClient;
  /** Which replica leads the general pool now, by asking each (undefined when none says so). */
  leader(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * The stack the campaign breaks: a 3-node JetStream cluster (streams with 3 replicas, servers that do not
 * advertise each other to clients, so every client stays behind its proxies), PostgreSQL for the archive, two
 * scheduler replicas and `agents` agents of real processes, each agent and replica reaching NATS only through
 * TCP proxies of its own.
 */
export async function startChaosStack(options: ChaosStackOptions): Promise<ChaosStack> {
  const stoppers: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stoppers.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    const nats = await startNatsCluster(3, { extraArgs: ['--no_advertise=true'] });
    stoppers.push(() => nats.dispose());
    options.log(`nats: ${nats.servers.map((s) => s.port).join(', ')}`);
    const postgres = await startPostgres({ durable: false });
    stoppers.push(() => postgres.dispose());
    options.log(`postgres: ${postgres.port}`);
    const tenants = writeTempTenantsFile({ operators: ['ops'], tenants: [{ name: 'chaos', requestsPerSecond: 100_000 }] }, 'chaos');
    stoppers.push(async () => rmSync(tenants.dir, { recursive: true, force: true }));

    const proxiesFor = async () => {
      const list = await Promise.all(nats.servers.map((s) => startTcpProxy({ port: s.port })));
      stoppers.push(async () => Promise.all(list.map((p) => p.close())));
      return list;
    };
    const urlOf = (proxies: TcpProxy[]) => proxies.map((p) => `nats://127.0.0.1:${p.port}`).join(',');

    const replicas: ChaosStack['replicas'] = [];
    for (const replicaId of ['a', 'b']) {
      const proxies = await proxiesFor();
      const port = await freePort();
      const env = {
        QY_NATS_URL: urlOf(proxies),
        QY_HTTP_PORT: String(port),
        QY_REPLICA_ID: replicaId,
        QY_STREAM_REPLICAS: '3',
        QY_TENANTS_FILE: tenants.file,
        QY_DATABASE_URL: postgres.url,
        QY_MAX_ATTEMPTS: '50',
        QY_LOG_LEVEL: 'warn',
        QY_HEARTBEAT_INTERVAL_MS: String(CHAOS_TIMINGS.heartbeatIntervalMs),
        QY_SUSPECT_AFTER_MS: String(CHAOS_TIMINGS.suspectAfterMs),
        QY_DOWN_AFTER_MS: String(CHAOS_TIMINGS.downAfterMs),
        QY_LEASE_DURATION_MS: String(CHAOS_TIMINGS.leaseDurationMs),
        QY_LEASE_RENEW_DEADLINE_MS: String(CHAOS_TIMINGS.leaseRenewDeadlineMs),
        QY_LEASE_RETRY_MS: String(CHAOS_TIMINGS.leaseRetryMs),
        QY_CANCEL_GRACE_MS: '1000',
      };
      const replica = {
        name: `replica-${replicaId}`,
        replicaId,
        url: `http://127.0.0.1:${port}`,
        proxies,
        svc: undefined as unknown as ChildService,
        async start() {
          replica.svc = spawnTs('scheduler/main.ts', [], env);
          await waitForReadiness(replica.url, 90_000).catch((err: Error) => options.log(`${replica.name} not ready yet: ${err.message}`));
        },
      };
      await replica.start();
      stoppers.push(() => stopOrKill(replica, options.log));
      replicas.push(replica);
    }

    const agents: ProxiedProcess[] = [];
    for (let i = 1; i <= options.agents; i++) {
      const proxies = await proxiesFor();
      const dir = mkdtempSync(join(tmpdir(), `qy-chaos-agent${i}-`));
      stoppers.push(async () => rmSync(dir, { recursive: true, force: true }));
      const nodeFile = join(dir, 'nodes.json');
      const nodes = Array.from({ length: options.nodesPerAgent }, (_, n) => ({
        id: `chaos-${i}-${n + 1}`,
        pool: 'general',
        zone: 'z1',
        rack: `r${i}`,
        capacity: { cpuMillis: 4000, memBytes: 8 * GiB },
        ratedPowerWatts: 500,
      }));
      writeFileSync(nodeFile, JSON.stringify(nodes));
      mkdirSync(join(dir, 'state'), { recursive: true });
      const args = ['--node-file', nodeFile, '--agent-id', `chaos-agent-${i}`, '--state-dir', join(dir, 'state')];
      const env = { QY_NATS_URL: urlOf(proxies), QY_LOG_LEVEL: 'warn', QY_HEARTBEAT_INTERVAL_MS: String(CHAOS_TIMINGS.heartbeatIntervalMs), QY_KILL_GRACE_MS: '1000' };
      const agent: ProxiedProcess = {
        name: `agent-${i}`,
        proxies,
        svc: undefined as unknown as ChildService,
        async start() {
          agent.svc = spawnTs('agents/main.ts', args, env);
        },
      };
      await agent.start();
      stoppers.push(() => stopOrKill(agent, options.log));
      agents.push(agent);
    }

    const client = (token = tenants.tokens.chaos) => new SchedulerClient({ url: replicas.map((r) => r.url), token, connections: 4, timeoutMs: 10_000 });
    const ops = client(tenants.tokens.ops);
    stoppers.push(() => ops.close());
    const nodeCount = options.agents * options.nodesPerAgent;
    await waitUntil(async () => ((await ops.readyNodes()) >= nodeCount ? true : undefined), 120_000, () => `the ${nodeCount} nodes did not get ready:\n${agents.map((a) => a.svc.output()).join('\n')}`);

    const leader = async (): Promise<number | undefined> => {
      for (let i = 0; i < replicas.length; i++) {
        const r = await ops.readiness({}, { url: replicas[i].url }).catch(() => undefined);
        if (r?.pools.general?.role === 'leader') return i;
      }
      return undefined;
    };
    return { nats, postgres, replicas, agents, tenantToken: tenants.tokens.chaos, operatorToken: tenants.tokens.ops, client, leader, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once the replica answers /readyz with 200 (leading or standing by). */
export async function waitForReadiness(url: string, timeoutMs: number): Promise<void> {
  const c = new SchedulerClient({ url, connections: 1, timeoutMs: 5_000 });
  try {
    await waitUntil(async () => ((await c.readiness({ role: 'any' })).ready ? true : undefined), timeoutMs, () => `${url} not ready`);
  } finally {
    await c.close();
  }
}

/** How long a process may take to exit on SIGTERM before the campaign kills it (and says so). */
const STOP_TIMEOUT_MS = 30_000;

/**
 * SIGTERM, then kill -9 if the process has not exited after STOP_TIMEOUT_MS: a shutdown that hangs must not
 * hang the campaign, but it is reported (seen once: a replica stuck in shutdown with only its NATS link open).
 */
async function stopOrKill(p: ProxiedProcess, log: (line: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS)));
  const outcome = await Promise.race([p.svc.stop().then(() => 'stopped' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    log(`${p.name} did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM: kill -9\n${p.svc.output().slice(-2000)}`);
    await p.svc.kill9();
  }
}
