import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, placeJob, prepareJob } from '../../src/core';
import { TaskMeter, busyShare, nodeShareOf } from '../../src/metering/attribution';
import { PowerBudget } from '../../scheduler/power-budget';
import { UsageLedger, meterReport } from '../../scheduler/metering';
import type { StatusReport, TaskPlacement } from '../../src/protocol';
import { gpuNodeSpec, job, nodeSpec } from '../core/fixtures';

const HOUR = 3_600_000;
const task = (cpuMillis: number, gpus = 0, memBytes = 0): TaskPlacement => ({ taskIndex: 0, nodeId: 'n', cpuMillis, memBytes, gpuIndices: Array.from({ length: gpus }, (_, i) => i), gpuMilliEach: gpus > 0 ? 1000 : 0, extended: {} });

describe('attribution', () => {
  test("a task's share of its node: cores on a CPU node; GPUs weigh four fifths on a GPU node; a whole node is all of it", () => {
    expect(nodeShareOf(task(16_000), { cpuMillis: 64_000, gpus: 0 })).toBe(0.25);
    expect(nodeShareOf(task(16_000, 4), { cpuMillis: 128_000, gpus: 8 })).toBeCloseTo(0.8 * 0.5 + 0.2 * 0.125, 10);
    expect(nodeShareOf(task(128_000, 8), { cpuMillis: 128_000, gpus: 8 })).toBe(1);
    expect(busyShare(32_000, 0, { cpuMillis: 64_000, gpus: 0 })).toBe(0.5);
  });

  test('a meter charges each interval at the sampled power times the share, split at clock hours, in integers', () => {
    const start = 10 * HOUR - 30 * 60_000; // 09:30
    const m = new TaskMeter({ placement: task(32_000, 0, 2 * 1024 ** 3), alloc: { cpuMillis: 64_000, gpus: 0 }, startMs: start });
    m.sample(start + 30 * 60_000, 1000, 0.5); // 09:30–10:00 at 1 kW × 0.5 = 250 Wh, half green
    m.sample(start + 90 * 60_000, 600, 0.25); // 10:00–11:00 at 600 W × 0.5 = 300 Wh, a quarter green
    const segments = m.finish(start + 120 * 60_000); // 11:00–11:30 at the last 600 W: 150 Wh
    expect(segments).toEqual([
      { hourStartMs: 9 * HOUR, runMs: 30 * 60_000, cpuMilliSeconds: 32_000 * 1800, gpuMilliSeconds: {}, memMiBSeconds: 2048 * 1800, energyMilliWh: 250_000, greenMilliWh: 125_000, carbonMg: 0 },
      { hourStartMs: 10 * HOUR, runMs: HOUR, cpuMilliSeconds: 32_000 * 3600, gpuMilliSeconds: {}, memMiBSeconds: 2048 * 3600, energyMilliWh: 300_000, greenMilliWh: 75_000, carbonMg: 0 },
      { hourStartMs: 11 * HOUR, runMs: 30 * 60_000, cpuMilliSeconds: 32_000 * 1800, gpuMilliSeconds: {}, memMiBSeconds: 2048 * 1800, energyMilliWh: 150_000, greenMilliWh: 37_500, carbonMg: 0 },
    ]);
  });

  test('GPU use is counted per GPU model', () => {
    const m = new TaskMeter({ placement: task(16_000, 2), alloc: { cpuMillis: 128_000, gpus: 8 }, gpuModel: 'A800', startMs: 0 });
    m.sample(1000, 4000, 1);
    expect(m.finish(1000)[0].gpuMilliSeconds).toEqual({ A800: 2000 });
  });
});

describe('metering in the scheduler', () => {
  const report = (usage: StatusReport['usage']): StatusReport & { usage: NonNullable<StatusReport['usage']> } => ({ type: 'status', nodeId: 'n1', jobId: 'j1', attemptId: 'j1-a1', taskIndex: 0, state: 'succeeded', atMs: 0, usage: usage! });

  test('PUE scales energy and green energy; carbon is the non-green part at the grid intensity of the hour', () => {
    const u = meterReport(
      report([{ hourStartMs: 0, runMs: HOUR, cpuMilliSeconds: 1, gpuMilliSeconds: {}, memMiBSeconds: 1, energyMilliWh: 1_000_000, greenMilliWh: 400_000, carbonMg: 0 }]),
      { tenant: 't', pool: 'general', billingClass: 'standard' },
      { pue: 1.25, carbonAt: (ms) => (ms === HOUR / 2 ? 500 : NaN) },
    );
    // 1 kWh × 1.25 = 1.25 kWh, of which 0.5 kWh green; 0.75 kWh × 500 g/kWh = 375 g.
    expect(u.segments[0]).toMatchObject({ energyMilliWh: 1_250_000, greenMilliWh: 500_000, carbonMg: 375_000 });
    expect(u).toMatchObject({ tenant: 't', pool: 'general', jobId: 'j1', attemptId: 'j1-a1', taskIndex: 0 });
    expect(u.measured).toBeUndefined(); // no cgroup, nothing measured
    // What the task's cgroup counted travels with the metered record.
    const measured = { cpuSeconds: 1.5, peakMemBytes: 3 * 1024 ** 2 };
    expect(meterReport({ ...report([]), measured }, { tenant: 't', pool: 'general', billingClass: 'standard' }, { pue: 1, carbonAt: () => 0 }).measured).toEqual(measured);
  });

  test('the ledger keeps one record per task and knows which reports still need metering', () => {
    const ledger = new UsageLedger();
    const r = report([]);
    ledger.noteReport(r);
    expect(ledger.unmetered()).toHaveLength(1);
    const usage = meterReport(r, { tenant: 't', pool: 'general', billingClass: 'standard' }, { pue: 1, carbonAt: () => 0 });
    ledger.record(usage);
    ledger.record(usage);
    ledger.noteReport(r);
    expect(ledger.unmetered()).toEqual([]);
    expect(ledger.all()).toHaveLength(1);
  });
});

describe('power budget', () => {
  test('placements stay under the caps of their pool and zone; the reason names the cap', () => {
    const cluster = new ClusterState();
    for (let i = 0; i < 4; i++) cluster.upsertNode(nodeSpec(`c${i}`, { zone: i < 2 ? 'qy-a' : 'qy-b', ratedPowerWatts: 1000, capacity: { cpuMillis: 16_000 } }));
    cluster.upsertNode(gpuNodeSpec('g0', { zone: 'qy-a', ratedPowerWatts: 5000 }));
    // Idle: 4 × 350 W in general. Each 8-core job on a 16-core node adds 0.5 × 650 W = 325 W.
    const budget = new PowerBudget({ general: 2.4, 'zone:qy-b': 1.1 }, () => cluster, () => 0);
    const placed: string[] = [];
    for (let i = 0; i < 6; i++) {
      const p = placeJob(cluster, prepareJob(job({ id: `j${i}`, resources: { cpuMillis: 8000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY);
      if (!p.ok) break;
      const why = budget.blocks(p.placement);
      if (why) {
        expect(why).toMatch(/^held by the power budget of (pool general|zone qy-b): [\d.]+ of (2.4|1.1) kW estimated in use, this job adds 0.3 kW$/);
        continue;
      }
      cluster.reserve(p.placement);
      budget.placed(p.placement);
      placed.push(p.placement.tasks[0].nodeId);
    }
    // 1,400 W idle + 3 × 325 W = 2,375 W ≤ 2,400 W; a fourth would exceed the pool cap. qy-b (700 W idle) takes one job.
    expect(placed).toHaveLength(3);
    expect(placed.filter((n) => n === 'c2' || n === 'c3')).toHaveLength(1);
    budget.refresh();
    expect(budget.blocks(placeJobOrThrow(cluster, 'late'))).toMatch(/power budget/);
  });

  test('an hourly cap holds the value of the current UTC hour', () => {
    const cluster = new ClusterState();
    for (let i = 0; i < 2; i++) cluster.upsertNode(nodeSpec(`c${i}`, { zone: 'qy-a', ratedPowerWatts: 1000, capacity: { cpuMillis: 16_000 } }));
    // Idle: 2 × 350 W. One 8-core job adds 325 W: 1,025 W in all.
    const hourly = Array.from({ length: 24 }, (_, h) => (h >= 10 && h < 16 ? 2 : 1));
    let nowMs = Date.parse('2026-06-01T09:59:59Z');
    const budget = new PowerBudget({ general: hourly }, () => cluster, () => nowMs);
    expect(budget.hourly).toBe(true);
    const p = placeJobOrThrow(cluster, 'j');
    expect(budget.blocks(p)).toMatch(/^held by the power budget of pool general: 0.7 of 1 kW \(this hour\) estimated in use, this job adds 0.3 kW$/);
    nowMs = Date.parse('2026-06-01T10:00:00Z');
    expect(budget.blocks(p)).toBeUndefined();
    nowMs = Date.parse('2026-06-01T16:00:00Z');
    expect(budget.blocks(p)).toMatch(/power budget/);
    expect(new PowerBudget({ general: 5 }, () => cluster, () => nowMs).hourly).toBe(false);
  });
});

function placeJobOrThrow(cluster: ClusterState, id: string) {
  const p = placeJob(cluster, prepareJob(job({ id, resources: { cpuMillis: 8000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY);
  if (!p.ok) throw new Error('no room');
  return p.placement;
}
