import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchedulerClient } from '../src/client';
import { startNatsServer } from './nats-server';
import { startPostgres } from './postgres';
import { spawnScheduler, spawnVirtualNodeAgent, type ChildService } from './processes';
import { writeTenantsFile, type LocalTenant, type LocalTokens, type TenantsSpec } from './tenants';
import { waitUntil } from './wait';

/** What to start: a cluster of virtual nodes and the tenants that may call the API. */
export interface LocalStackOptions {
  /** Virtual nodes of the three pools (they run no commands), served by one agent process. */
  nodes: number;
  tenants: LocalTenant[];
  /** Prefix of the virtual node ids and of the temporary folders. */
  prefix?: string;
  /** Scheduler replicas, each its own process; the first one leads (default 1). */
  replicas?: number;
  /** Environment of replica `i` (QY_REPLICA_ID, lease timings, …), beside its tenants file. */
  schedulerEnv?: (replica: number) => Record<string, string>;
  /** Environment of the agent. */
  agentEnv?: Record<string, string>;
  /** How long the nodes may take to register (default 120 s). */
  readyTimeoutMs?: number;
  /** Start a PostgreSQL of its own (not durable) for the accounting archive, and give every replica its URL. */
  database?: boolean;
}

/** A running scheduler replica of the stack. */
export type StackReplica = ChildService & { url: string };

/** A running stack: the scheduler's URL, the tokens of the tenants file, the process ids (for CPU accounting). */
export interface LocalStack {
  /** The first replica's URL (it leads). */
  url: string;
  replicas: StackReplica[];
  agent: ChildService;
  natsUrl: string;
  /** The archive's database, with `database: true`. */
  databaseUrl?: string;
  tokens: LocalTokens;
  pids: Record<'nats-server' | 'scheduler' | 'agent', number | undefined>;
  /** Stops the agent, the schedulers, PostgreSQL and nats-server, and removes the tenants file. */
  stop(): Promise<void>;
}

/** Writes a tenants file (fresh tokens) into a new temporary folder. */
export function writeTempTenantsFile(spec: TenantsSpec, prefix = 'tenants'): { dir: string; file: string; tokens: LocalTokens } {
  const dir = mkdtempSync(join(tmpdir(), `qy-${prefix}-`));
  const file = join(dir, 'tenants.yaml');
  return { dir, file, tokens: writeTenantsFile(file, spec) };
}

/**
 * Starts nats-server, the scheduler (or several replicas) and an agent of `nodes` virtual nodes, each a
 * separate process on this machine as in production, and resolves once every virtual node is ready — so
 * load put on the stack measures scheduling, not registration. Whatever started is stopped again when a later
 * step fails.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const prefix = options.prefix ?? 'stack';
  const tenants = writeTempTenantsFile({ operators: ['ops'], tenants: options.tenants }, prefix);
  const stoppers: (() => Promise<void>)[] = [async () => rmSync(tenants.dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const stopOne of stoppers.splice(0).reverse()) await stopOne();
  };
  try {
    const nats = await startNatsServer();
    stoppers.push(() => nats.dispose());
    const pg = options.database ? await startPostgres({ durable: false }) : undefined;
    if (pg) stoppers.push(() => pg.dispose());
    const database: Record<string, string> = pg ? { QY_DATABASE_URL: pg.url } : {};
    const replicas: StackReplica[] = [];
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      // The first replica leads; the others stand by, ready once they serve reads.
      const replica = await spawnScheduler(nats.url, { role: i === 0 ? 'leader' : 'any', env: { QY_LOG_LEVEL: 'error', QY_TENANTS_FILE: tenants.file, ...database, ...options.schedulerEnv?.(i) } });
      replicas.push(replica);
      stoppers.push(() => replica.stop());
    }
    const agent = spawnVirtualNodeAgent(nats.url, options.nodes, prefix, { QY_LOG_LEVEL: 'error', ...options.agentEnv });
    stoppers.push(() => agent.stop());
    await waitForReadyNodes(replicas[0].url, tenants.tokens.ops, options.nodes, options.readyTimeoutMs ?? 120_000, () => agent.output());
    return { url: replicas[0].url, replicas, agent, natsUrl: nats.url, databaseUrl: pg?.url, tokens: tenants.tokens, pids: { 'nats-server': nats.pid, scheduler: replicas[0].child.pid, agent: agent.child.pid }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once the pools of the scheduler at `url` count at least `count` ready nodes. */
export async function waitForReadyNodes(url: string, token: string, count: number, timeoutMs: number, describe: () => string): Promise<void> {
  const client = new SchedulerClient({ url, token, connections: 1 });
  try {
    await waitUntil(async () => ((await client.readyNodes()) >= count ? true : undefined), timeoutMs, describe);
  } finally {
    await client.close();
  }
}
