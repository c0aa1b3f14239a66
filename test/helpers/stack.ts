import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type AgentOptions } from '../../agents/agent';
import { constantGreen } from '../../agents/collectors/green';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { SimRunner } from '../../agents/runners/sim-runner';
import { SimTelemetry } from '../../agents/telemetry';
import { SCHEDULER_ENV, loadSchedulerConfig, type SchedulerConfig } from '../../scheduler/config';
import { runScheduler, type RunningScheduler } from '../../scheduler/run';
import { UNTRIED_REASON } from '../../scheduler/state/views';
import { spawnScheduler as spawnSchedulerProcess, spawnVirtualNodeAgent as spawnVirtualNodeAgentProcess, type ChildService } from '../../harness/processes';
import { nodeSpecSchema, type NodeSpec, type Pool } from '../../src/protocol';
import { writeTempTenantsFile } from '../../harness/stack';
import { scrapeMetric } from '../../harness/history';
import type { LocalTokens, TenantsSpec } from '../../harness/tenants';
import { createLogger } from '../../src/telemetry/logger';
import { ApiClient, waitUntil } from './api';

export { spawnTs, type ChildService } from '../../harness/processes';

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
export const TEST_TENANTS: TenantsSpec = {
  operators: ['ops'],
  tenants: [
    { name: 'city-a', requestsPerSecond: 100_000 },
    { name: 'city-b', requestsPerSecond: 100_000 },
  ],
};

/** Writes a tenants file to a temporary folder; returns its path and the tokens. */
export function testTenantsFile(spec = TEST_TENANTS): { file: string; tokens: LocalTokens } {
  const { file, tokens } = writeTempTenantsFile(spec);
  return { file, tokens };
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

/**
 * Options of an agent in this process serving `nodes`: simulated telemetry, real processes (a second of
 * kill grace), a state folder of its own, heartbeats every 200 ms; `overrides` replace any of them.
 */
export function testAgentOptions(natsUrl: string, agentId: string, nodes: NodeSpec[], overrides: Partial<AgentOptions> = {}): AgentOptions {
  const green = constantGreen(0.6);
  return {
    agentId,
    natsUrl,
    nodes: nodes.map((spec) => ({ spec, telemetry: new SimTelemetry(spec, green) })),
    runner: new ProcessRunner(1_000),
    stateDir: mkdtempSync(join(tmpdir(), `qy-agent-${agentId}-`)),
    heartbeatIntervalMs: 200,
    log: silentLog,
    ...overrides,
  };
}

/** Starts an agent in this process serving `nodes`: running real processes, or as virtual nodes whose tasks only sleep. */
export async function startAgent(natsUrl: string, agentId: string, nodes: NodeSpec[], runner: 'process' | 'virtual' = 'process'): Promise<Agent> {
  const agent = new Agent(testAgentOptions(natsUrl, agentId, nodes, runner === 'virtual' ? { runner: new SimRunner(500) } : {}));
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

/** Scheduling cycles a scheduler has run: qy_scheduling_cycles_total on its /metrics. */
const cyclesRun = (url: string): Promise<number> => scrapeMetric(url, 'qy_scheduling_cycles_total');

/**
 * The bounded observation window of a "did not happen" check, instead of a sleep: `cycles` times, the
 * scheduler is asked to retry the pool's waiting jobs and the test waits until a scheduling cycle has run
 * (qy_scheduling_cycles_total went up). Whatever a cycle would do to those jobs, it has had that many chances.
 * A job must be waiting in the pool (else no cycle runs, and this times out saying so).
 */
export async function observeCycles(s: Pick<RunningScheduler, 'scheduler' | 'url'>, pool: Pool, cycles = 3): Promise<void> {
  for (let i = 0; i < cycles; i++) {
    const before = await cyclesRun(s.url);
    s.scheduler.cycle.retry(pool);
    await waitUntil(async () => ((await cyclesRun(s.url)) > before ? true : undefined), 10_000, () => `no scheduling cycle ran after a retry of pool ${pool} (is a job waiting there?)`);
  }
}

/** Waits until a cycle has tried the job and left it waiting with a reason; returns that reason. */
export async function waitForPendingReason(api: ApiClient, jobId: string, timeoutMs = 10_000): Promise<string> {
  return waitUntil(async () => {
    const reason = (await api.job(jobId)).pendingReason;
    return reason === UNTRIED_REASON ? undefined : reason;
  }, timeoutMs, async () => `job ${jobId} has no pending reason: ${JSON.stringify(await api.job(jobId))}`);
}

/**
 * Starts the scheduler as a child process with fast liveness settings (so a test can kill -9 it); resolves
 * once it leads, or (`standby`) once it serves reads, or (`noWait`) at once.
 */
export async function spawnScheduler(natsUrl: string, port?: number, env: Record<string, string> = {}, tenants = testTenantsFile(), options: { standby?: boolean; noWait?: boolean } = {}): Promise<ChildService & { url: string; api: ApiClient; operator: ApiClient; tenants: { file: string; tokens: LocalTokens } }> {
  const svc = await spawnSchedulerProcess(natsUrl, {
    port,
    role: options.noWait ? 'none' : options.standby ? 'any' : 'leader',
    // The same settings as in-process schedulers, under their environment variables.
    env: { ...Object.fromEntries(Object.entries(FAST_LIVENESS).map(([key, value]) => [SCHEDULER_ENV[key as keyof typeof FAST_LIVENESS], value])), QY_TENANTS_FILE: tenants.file, ...env },
  });
  return { ...svc, api: new ApiClient(svc.url, tenants.tokens['city-a']), operator: new ApiClient(svc.url, tenants.tokens.ops), tenants };
}

/** Starts an agent of virtual nodes as a child process, heartbeating at the fast test interval. */
export function spawnVirtualNodeAgent(natsUrl: string, count: number, prefix: string, env: Record<string, string> = {}): ChildService {
  return spawnVirtualNodeAgentProcess(natsUrl, count, prefix, { QY_HEARTBEAT_INTERVAL_MS: FAST_LIVENESS.heartbeatIntervalMs, ...env });
}
