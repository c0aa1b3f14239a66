import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agents/agent';
import { constantGreen } from '../../agents/collectors/green';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { SimRunner } from '../../agents/runners/sim-runner';
import { SimTelemetry } from '../../agents/telemetry';
import { SCHEDULER_ENV, loadSchedulerConfig, type SchedulerConfig } from '../../scheduler/config';
import { runScheduler, type RunningScheduler } from '../../scheduler/run';
import { spawnScheduler as spawnSchedulerProcess, spawnSimAgent as spawnSimAgentProcess, type ChildService } from '../../src/local/processes';
import { nodeSpecSchema, type NodeSpec } from '../../src/protocol';
import { writeTenantsFile, type LocalTokens } from '../../src/local/tenants';
import { createLogger } from '../../src/telemetry/logger';
import { ApiClient, waitUntil } from './api';

export { spawnTs, type ChildService } from '../../src/local/processes';

const GiB = 1024 ** 3;

/** Liveness and leader-election settings that keep failure tests short. */
export const FAST_LIVENESS = { heartbeatIntervalMs: '200', suspectAfterMs: '700', downAfterMs: '1500', cancelGraceMs: '1000', leaseDurationMs: '1500', leaseRenewDeadlineMs: '1000', leaseRetryMs: '200' };

export const silentLog = createLogger({ name: 'test', level: process.env.QY_TEST_LOG_LEVEL ?? 'silent' });

/** A node spec for tests: small, in the given pool. */
export function testNode(id: string, pool: NodeSpec['pool'] = 'general', extra: Record<string, unknown> = {}): NodeSpec {
  const gpus = pool === 'intelligent' ? { gpus: 4, gpuMemBytes: 80 * GiB } : {};
  return nodeSpecSchema.parse({
    id,
    pool,
    zone: 'z1',
    rack: 'r1',
    capacity: { cpuMillis: 8000, memBytes: 32 * GiB, ...gpus },
    gpuModel: pool === 'intelligent' ? 'A800' : undefined,
    ratedPowerWatts: 500,
    ...extra,
  });
}

/** Tenants of the test schedulers: an operator and two cities that may use every class and data level. */
export const TEST_TENANTS: Parameters<typeof writeTenantsFile>[1] = {
  operators: ['ops'],
  tenants: [
    { name: 'city-a', requestsPerSecond: 100_000 },
    { name: 'city-b', requestsPerSecond: 100_000 },
  ],
};

/** Writes a tenants file to a temporary folder; returns its path and the tokens. */
export function testTenantsFile(spec = TEST_TENANTS): { file: string; tokens: LocalTokens } {
  const file = join(mkdtempSync(join(tmpdir(), 'qy-tenants-')), 'tenants.yaml');
  return { file, tokens: writeTenantsFile(file, spec) };
}

/** A scheduler for tests: `api` is tenant city-a, `operator` the operator, `as(name)` any other caller. */
export interface TestScheduler extends RunningScheduler {
  api: ApiClient;
  operator: ApiClient;
  tokens: LocalTokens;
  as(name: string): ApiClient;
}

/** Starts the scheduler in this process on a free port, with test tenants unless a tenants file is given. */
export async function startScheduler(natsUrl: string, overrides: Partial<Record<keyof SchedulerConfig, unknown>> = {}, tenants = TEST_TENANTS): Promise<TestScheduler> {
  const generated = overrides.tenantsFile === undefined ? testTenantsFile(tenants) : undefined;
  const config = loadSchedulerConfig({}, { natsUrl, httpPort: 0, ...FAST_LIVENESS, tenantsFile: generated?.file, ...overrides });
  const running = await runScheduler(config, silentLog);
  const tokens = generated?.tokens ?? {};
  const base = new ApiClient(running.url);
  return Object.assign(running, { api: base.as(tokens['city-a']), operator: base.as(tokens.ops), tokens, as: (name: string) => base.as(tokens[name]) });
}

/** Starts an agent in this process serving `nodes`, running real processes or simulated sleepers. */
export async function startAgent(natsUrl: string, agentId: string, nodes: NodeSpec[], runner: 'process' | 'sim' = 'process'): Promise<Agent> {
  const green = constantGreen(0.6);
  const agent = new Agent({
    agentId,
    natsUrl,
    nodes: nodes.map((spec) => ({ spec, telemetry: new SimTelemetry(spec, green) })),
    runner: runner === 'process' ? new ProcessRunner(1_000) : new SimRunner(500),
    stateDir: mkdtempSync(join(tmpdir(), `qy-agent-${agentId}-`)),
    heartbeatIntervalMs: 200,
    log: silentLog,
  });
  await agent.start();
  return agent;
}

/** Waits until the scheduler lists these nodes as ready (`api` must be an operator's client). */
export async function waitForNodes(api: ApiClient, nodeIds: string[], timeoutMs = 10_000): Promise<void> {
  await waitUntil(async () => {
    const res = await api.request<{ items: { id: string; state: string }[] }>('GET', '/v1/nodes');
    const ready = new Set(res.body.items.filter((n) => n.state === 'ready').map((n) => n.id));
    return nodeIds.every((id) => ready.has(id)) ? true : undefined;
  }, timeoutMs, () => `nodes ${nodeIds.join(',')} not ready`);
}

/**
 * Starts the scheduler as a child process with fast liveness settings (so a test can kill -9 it); resolves
 * once it leads, or (`standby`) once it serves reads.
 */
export async function spawnScheduler(natsUrl: string, port?: number, env: Record<string, string> = {}, tenants = testTenantsFile(), options: { standby?: boolean } = {}): Promise<ChildService & { url: string; api: ApiClient; operator: ApiClient; tenants: { file: string; tokens: LocalTokens } }> {
  const svc = await spawnSchedulerProcess(natsUrl, {
    port,
    role: options.standby ? 'any' : 'leader',
    // The same settings as in-process schedulers, under their environment variables.
    env: { ...Object.fromEntries(Object.entries(FAST_LIVENESS).map(([key, value]) => [SCHEDULER_ENV[key as keyof typeof FAST_LIVENESS], value])), QY_TENANTS_FILE: tenants.file, ...env },
  });
  return { ...svc, api: new ApiClient(svc.url, tenants.tokens['city-a']), operator: new ApiClient(svc.url, tenants.tokens.ops), tenants };
}

/** Starts a simulating agent as a child process, heartbeating at the fast test interval. */
export function spawnSimAgent(natsUrl: string, count: number, prefix: string, env: Record<string, string> = {}): ChildService {
  return spawnSimAgentProcess(natsUrl, count, prefix, { QY_HEARTBEAT_INTERVAL_MS: FAST_LIVENESS.heartbeatIntervalMs, ...env });
}
