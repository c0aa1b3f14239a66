import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer } from './nats-server';
import { spawnScheduler, spawnSimAgent } from './processes';
import { writeTenantsFile, type LocalTenant, type LocalTokens } from './tenants';
import { waitUntil } from './wait';

/** What to start: a cluster of simulated nodes and the tenants that may call the API. */
export interface LocalStackOptions {
  /** Simulated nodes of the three pools, served by one agent process. */
  nodes: number;
  tenants: LocalTenant[];
  /** Prefix of the simulated node ids and of the temporary folders. */
  prefix?: string;
}

/** A running stack: the scheduler's URL, the tokens of the tenants file, the process ids (for CPU accounting). */
export interface LocalStack {
  url: string;
  natsUrl: string;
  tokens: LocalTokens;
  pids: Record<'nats-server' | 'scheduler' | 'agent', number | undefined>;
  /** Stops the agent, the scheduler and nats-server, and removes the tenants file. */
  stop(): Promise<void>;
}

/**
 * Starts nats-server, the scheduler and an agent simulating `nodes` nodes, each a separate process on this
 * machine as in production, and resolves once every simulated node is ready — so load put on the stack
 * measures scheduling, not registration. Whatever started is stopped again when a later step fails.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const prefix = options.prefix ?? 'stack';
  const dir = mkdtempSync(join(tmpdir(), `qy-${prefix}-`));
  const tenantsFile = join(dir, 'tenants.yaml');
  const tokens = writeTenantsFile(tenantsFile, { operators: ['ops'], tenants: options.tenants });
  const stoppers: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const stopOne of stoppers.splice(0).reverse()) await stopOne();
  };
  try {
    const nats = await startNatsServer();
    stoppers.push(() => nats.dispose());
    const scheduler = await spawnScheduler(nats.url, { env: { QY_LOG_LEVEL: 'error', QY_TENANTS_FILE: tenantsFile } });
    stoppers.push(() => scheduler.stop());
    const agent = spawnSimAgent(nats.url, options.nodes, prefix, { QY_LOG_LEVEL: 'error' });
    stoppers.push(() => agent.stop());
    await waitForReadyNodes(scheduler.url, tokens.ops, options.nodes, 120_000, () => agent.output());
    return { url: scheduler.url, natsUrl: nats.url, tokens, pids: { 'nats-server': nats.pid, scheduler: scheduler.child.pid, agent: agent.child.pid }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once the pools of the scheduler at `url` count at least `count` ready nodes. */
export async function waitForReadyNodes(url: string, token: string, count: number, timeoutMs: number, describe: () => string): Promise<void> {
  await waitUntil(
    async () => {
      const res = await fetch(`${url}/v1/pools`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { items: { nodes: { ready: number } }[] };
      return body.items.reduce((n, p) => n + p.nodes.ready, 0) >= count ? true : undefined;
    },
    timeoutMs,
    describe,
  );
}
