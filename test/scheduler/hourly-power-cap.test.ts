import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadSchedulerConfig } from '../../scheduler/config';
import { runScheduler } from '../../scheduler/run';
import type { Principal } from '../../scheduler/tenants';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { jobSpecSchema, nodeSpecSchema, type NodeSpec } from '../../src/protocol';
import { ManualClock } from '../helpers/manual-clock';
import { ScriptedAgent } from '../helpers/scripted-agent';
import { silentLog, testTenantsFile } from '../helpers/stack';
import { waitUntil } from '../helpers/api';

/**
 * A power cap that follows the green supply hour by hour (QY_POWER_BUDGETS_KW with 24 values), in the
 * service as in the simulator: a job the cap of this hour holds starts when the hour turns and the cap
 * rises, with nothing else happening meanwhile (the cycle wakes itself at the hour). On a virtual clock.
 */
let nats: LocalNatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

const T0 = Date.UTC(2026, 5, 1, 9, 58, 0);
const GiB = 1024 ** 3;

test('a job held by this hour\'s cap starts when the hour turns and the cap rises', async () => {
  // Two 1 kW nodes: 700 W idle; an 8-core job on a 16-core node adds 325 W. 1 kW until 10:00 UTC, 2 kW from then to 16:00.
  const nodes: NodeSpec[] = ['g0', 'g1'].map((id) => nodeSpecSchema.parse({ id, pool: 'general', zone: 'z1', ratedPowerWatts: 1000, capacity: { cpuMillis: 16_000, memBytes: 32 * GiB } }));
  const hourly = Array.from({ length: 24 }, (_, h) => (h >= 10 && h < 16 ? 2 : 1));
  const clock = new ManualClock(T0);
  const tenants = testTenantsFile();
  const config = loadSchedulerConfig({}, { natsUrl: nats.url, httpPort: 0, tenantsFile: tenants.file, heartbeatIntervalMs: 60_000, suspectAfterMs: 600_000, downAfterMs: 600_000, powerBudgetsKw: JSON.stringify({ general: hourly }) });
  const running = await runScheduler(config, silentLog, undefined, clock);
  const s = running.scheduler;
  const agent = new ScriptedAgent('cap-agent', nodes, () => 3_600_000, 0.5);
  try {
    await agent.start(nats.url);
    await waitUntil(() => s.registry.entries.size === nodes.length || undefined, 10_000, () => 'nodes did not register');
    const principal: Principal = { kind: 'tenant', name: 'city-a', tenant: s.tenants.tenant('city-a')! };
    const { id } = await running.ops.submit(jobSpecSchema.parse({ pool: 'general', resources: { cpuMillis: 8000, memBytes: GiB } }), principal, undefined);
    const view = () => running.ops.getJob(id, principal);
    let reason: string | undefined;
    await waitUntil(async () => {
      reason = (await view()).pendingReason;
      return /power budget/.test(reason ?? '') ? true : undefined;
    }, 10_000, () => `not held by the cap: ${reason}`);
    expect(reason).toMatch(/held by the power budget of pool general: 0.7 of 1 kW \(this hour\)/);

    // A minute on, still 09:59: a cycle that tries the pool again still finds it held. Then 10:00: the cycle
    // wakes by itself and places it.
    clock.advanceTo(T0 + 60_000);
    const cyclesRun = async () => (await s.metrics.cycles.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await cyclesRun();
    s.cycle.retry('general');
    await waitUntil(async () => ((await cyclesRun()) > before && s.cycle.isIdle ? true : undefined), 10_000, () => 'no cycle ran');
    expect(s.store.table.get(id)!.state).toBe('pending');
    expect((await view()).pendingReason).toMatch(/held by the power budget of pool general: 0.7 of 1 kW \(this hour\)/);
    clock.advanceTo(Date.UTC(2026, 5, 1, 10, 0, 0));
    await waitUntil(() => (s.store.table.get(id)!.state !== 'pending' ? true : undefined), 10_000, () => `still ${s.store.table.get(id)!.state}`);
    expect(['placed', 'running']).toContain(s.store.table.get(id)!.state);
  } finally {
    await agent.stop();
    await running.close();
  }
}, 60_000);
