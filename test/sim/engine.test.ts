import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { nodeSpecSchema, type NodeSpec } from '../../src/protocol';
import { environmentOf, type SimEnvironment } from '../../src/sim/cluster-file';
import { simulate } from '../../src/sim/engine';
import { SIM_POLICIES, policiesNamed, processorLevel } from '../../src/sim/policies';
import { loadTrace } from '../../src/sim/sources';
import { makeForecaster } from '../../src/green';
import { traceJob } from '../../src/sim/trace';

const HOUR = 3_600_000;
const lublin = loadTrace('test/fixtures/lublin_256-first-1000.swf', { jobs: 0, nodes: 0, load: 0, seed: 1 });
const policy = (name: string) => SIM_POLICIES[name].make();

function hpcNodes(count: number, cores = 1): NodeSpec[] {
  return Array.from({ length: count }, (_, i) => nodeSpecSchema.parse({ id: `n${i}`, pool: 'super', rack: 'r0', capacity: { cpuMillis: cores * 1000, memBytes: 0 } }));
}
/** A super-pool job of `tasks` 1-core tasks, running `runS` seconds with an exact walltime. */
const gang = (id: string, submitS: number, tasks: number, runS: number, extra: Partial<Parameters<typeof traceJob>[0]> = {}) =>
  traceJob({ id, tenant: 't', pool: 'super', submittedAtMs: submitS * 1000, runMs: runS * 1000, walltimeMs: runS * 1000, task: { cpuMillis: 1000 }, tasks, ...extra });

describe('the simulator on the pinned Lublin-256 excerpt (processor-level allocation)', () => {
  const [fifo, easy] = ['fifo', 'easy-backfill'].map((name) => simulate(lublin.jobs, lublin.cluster!, processorLevel(policy(name)), environmentOf()));

  test('every job completes under both policies', () => {
    for (const r of [fifo, easy]) expect(r.jobs).toEqual({ total: 1000, completed: 1000, rejected: 0, unfinished: 0, interrupted: 0, failed: 0, preempted: 0 });
  });

  test('EASY backfill beats FIFO on mean wait and bounded slowdown by an order of magnitude, as the literature reports on Lublin-256', () => {
    // RLScheduler (SC'20) reports average bounded slowdown 7,273.77 for FCFS and 235.82 for FCFS with backfilling.
    expect(easy.waitS.mean).toBeLessThan(fifo.waitS.mean);
    expect(easy.boundedSlowdown.mean).toBeLessThan(fifo.boundedSlowdown.mean / 10);
    expect(easy.utilisation).toBeGreaterThan(fifo.utilisation);
  });

  test('with exact walltimes, no head job starts later than the reservation it was first given', () => {
    expect(easy.reservationViolations).toBe(0);
  });

  test('utilisation is a share and bounded slowdown is at least 1', () => {
    for (const r of [fifo, easy]) {
      expect(r.utilisation).toBeGreaterThan(0);
      expect(r.utilisation).toBeLessThanOrEqual(1);
      expect(r.boundedSlowdown.p50).toBeGreaterThanOrEqual(1);
      expect(r.timeline.utilisation.super.every((u) => u >= 0 && u <= 1)).toBe(true);
    }
  });
});

describe('the simulator on small hand-made cases', () => {
  test('strict FIFO blocks a small job behind a large one; EASY lets it run beside, without delaying the large one', () => {
    const jobs = [gang('a', 0, 3, 100), gang('big', 1, 4, 50), gang('small', 2, 1, 10)];
    const nodes = hpcNodes(4);
    const fifo = simulate(jobs, nodes, processorLevel(policy('fifo')), environmentOf());
    const easy = simulate(jobs, nodes, processorLevel(policy('easy-backfill')), environmentOf());
    // FIFO: big waits for a (ends at 100 s), small waits for big (ends at 150 s).
    expect(fifo.waitS.max).toBe(148);
    expect(fifo.completionS.mean).toBeCloseTo((100 + 149 + 158) / 3, 1);
    // EASY: small (10 s) fits beside a before big's reservation at 100 s.
    expect(easy.waitS.mean).toBeCloseTo((0 + 99 + 0) / 3, 1);
    expect(easy.reservationViolations).toBe(0);
  });

  test("EASY backfills beside the head's planned nodes, not only when the first nodes found are free of it (as Slurm plans backfill)", () => {
    // a holds n0 and n1 until 100 s; head (3 nodes) is planned on n0–n2 from then. long (500 s) would delay it
    // on n2, the first free node, but not on n3: it starts at once there.
    const jobs = [gang('a', 0, 2, 100), gang('head', 1, 3, 50), gang('long', 2, 1, 500)];
    const placed = new Map<string, { atS: number; nodes: string[] }>();
    const r = simulate(jobs, hpcNodes(4), processorLevel(policy('easy-backfill')), environmentOf(), {
      onPlaced: (jobId, placement, atMs) => placed.set(jobId, { atS: atMs / 1000, nodes: placement.tasks.map((t) => t.nodeId) }),
    });
    expect(placed.get('long')).toEqual({ atS: 2, nodes: ['n3'] });
    expect(placed.get('head')).toEqual({ atS: 100, nodes: ['n0', 'n1', 'n2'] });
    expect(r.reservationViolations).toBe(0);
  });

  test('utilisation and energy follow the jobs exactly', () => {
    const env: SimEnvironment = { ...environmentOf(), idleFraction: 0.5, ratedWatts: () => 1000, greenShareAt: () => 0.25, gridCarbonAt: () => 400, pricePerKwhAt: () => 1 };
    const r = simulate([gang('a', 0, 2, 3600)], hpcNodes(4), processorLevel(policy('fifo')), env);
    expect(r.utilisation).toBe(0.5);
    // 4 nodes idle at 500 W + 2 busy ones 500 W more, for one hour: 3 kWh, a quarter green, 1 CNY/kWh,
    // 2.25 kWh from the grid at 400 g/kWh. The job is charged the two whole nodes it held: 2 kWh, 600 g. The
    // work itself drew 1 kWh above idle: 300 g.
    expect(r.energy).toEqual({ kwh: 3, greenKwh: 0.75, greenShare: 0.25, carbonKg: 0.9, cost: 3, jobKwh: 2, jobGreenShare: 0.25, jobCarbonKg: 0.6, carbonPerJobG: 600, workCarbonKg: 0.3, workCarbonPerJobG: 300 });
  });

  test('a job that could never fit is rejected, not left waiting', () => {
    const r = simulate([gang('huge', 0, 8, 10), gang('ok', 0, 2, 10)], hpcNodes(4), processorLevel(policy('easy-backfill')), environmentOf());
    expect(r.jobs).toMatchObject({ completed: 1, rejected: 1, unfinished: 0 });
  });

  test('node failures kill and requeue jobs; a job fails for good after its last attempt, as in the service', () => {
    const env: SimEnvironment = { ...environmentOf(), failures: { mtbfHours: 2, repairHours: 0.5 } };
    const jobs = Array.from({ length: 200 }, (_, i) => gang(`j${i}`, i * 60, 1 + (i % 4), 1800));
    const patient = simulate(jobs, hpcNodes(16), { ...processorLevel(policy('easy-backfill')), maxAttempts: 1000 }, env, { seed: 7 });
    expect(patient.jobs.interrupted).toBeGreaterThan(0);
    expect(patient.jobs).toMatchObject({ completed: 200, failed: 0, unfinished: 0 });
    // With one attempt, every job hit by a failure is given up; none is lost.
    const once = simulate(jobs, hpcNodes(16), { ...processorLevel(policy('easy-backfill')), maxAttempts: 1 }, env, { seed: 7 });
    expect(once.jobs.failed).toBe(once.jobs.interrupted);
    expect(once.jobs.completed + once.jobs.failed).toBe(200);
    expect(once.jobs.unfinished).toBe(0);
  });

  test('green-aware shifting starts deferrable work in the cleanest window it can still make', () => {
    const green = Array.from({ length: 24 }, (_, h) => (h >= 10 && h < 14 ? 0.9 : 0.1));
    const env: SimEnvironment = { ...environmentOf(), greenShareAt: (_zone, atMs) => green[Math.floor(atMs / HOUR) % 24] };
    const jobs = [gang('patient', 0, 1, 600, { priorityClass: 'batch' }), gang('impatient', 0, 1, 600, { priorityClass: 'batch' })];
    jobs[0].job.deferrable = { maxDelaySeconds: 12 * 3600 };
    jobs[1].job.deferrable = { maxDelaySeconds: 3600 };
    // 40 nodes: a one-node job is small enough for its pool to be shifted.
    const [blind, aware] = policiesNamed('green-blind,green-aware').map((p) => simulate(jobs, hpcNodes(40), processorLevel(p), env));
    expect(blind.waitS.max).toBe(0);
    expect(aware.deferred).toBe(1);
    // The patient job starts when the clean hours begin; the impatient one's window is all alike, so it starts now.
    expect(aware.waitS.max).toBe((10 * HOUR) / 1000);
    expect(aware.waitS.p50).toBe(0);
    expect(aware.energy.carbonPerJobG).toBeLessThan(blind.energy.carbonPerJobG);
    expect(aware.deferrable).toMatchObject({ jobs: 2, deadlineMisses: 0 });
  });

  test('work seen before the run tells green-aware how busy and how swinging its pool is: a small pool whose gangs cannot wait defers nothing', () => {
    const green = Array.from({ length: 24 }, (_, h) => (h >= 10 && h < 14 ? 0.9 : 0.1));
    const env: SimEnvironment = { ...environmentOf(), greenShareAt: (_zone, atMs) => green[Math.floor(atMs / HOUR) % 24] };
    const jobs = [gang('patient', 0, 1, 600, { priorityClass: 'batch' })];
    jobs[0].job.deferrable = { maxDelaySeconds: 12 * 3600 };
    const [aware] = policiesNamed('green-aware');
    expect(simulate(jobs, hpcNodes(40), processorLevel(aware), env).deferred).toBe(1);
    // The day before: gangs of 4 of the 40 nodes for an hour, 6 an hour (a load of 0.6) that cannot wait. The
    // occupancy swings by sqrt(6 × 4²) = 9.8 nodes, a quarter of the pool: no room is left to book.
    const dayBefore = Array.from({ length: 24 * 6 }, (_, i) => gang(`before${i}`, -24 * 3600 + i * 600, 4, 3600).job);
    expect(simulate(jobs, hpcNodes(40), processorLevel(aware), env, { warmWork: dayBefore }).deferred).toBe(0);
    // The same day of single nodes (24 an hour, swinging by 4.9 nodes): a tenth of the pool is left to book, and the job is deferred.
    const smaller = Array.from({ length: 24 * 24 }, (_, i) => gang(`one${i}`, -24 * 3600 + i * 150, 1, 3600).job);
    expect(simulate(jobs, hpcNodes(40), processorLevel(aware), env, { warmWork: smaller }).deferred).toBe(1);
  });

  test('the work carbon two schedules differ by is exactly what the cluster emits more or less over the same span', () => {
    const green = Array.from({ length: 24 }, (_, h) => (h >= 10 && h < 14 ? 0.9 : 0.1));
    const env: SimEnvironment = { ...environmentOf(), idleFraction: 0.5, ratedWatts: () => 1000, gridCarbonAt: () => 400, greenShareAt: (_zone, atMs) => green[Math.floor(atMs / HOUR) % 24] };
    // A 30-hour job that cannot wait ends both runs at the same time; four 2-hour jobs may wait 14 hours (a
    // plan leaves an hour and a run's room before the deadline, so 10:00 to 12:00, all clean, is in reach).
    const jobs = [gang('anchor', 0, 1, 30 * 3600), ...Array.from({ length: 4 }, (_, i) => gang(`d${i}`, 0, 1, 2 * 3600, { priorityClass: 'batch' }))];
    for (const t of jobs.slice(1)) t.job.deferrable = { maxDelaySeconds: 14 * 3600 };
    const [blind, aware] = policiesNamed('green-blind,green-aware').map((p) => simulate(jobs, hpcNodes(40), processorLevel(p), env));
    expect(aware.makespanS).toBe(blind.makespanS);
    // Each deferred job's 1 kWh above idle moves from 360 to 40 g/kWh into the clean hours.
    const deferred = aware.deferred;
    expect(deferred).toBe(4);
    expect(blind.energy.workCarbonKg - aware.energy.workCarbonKg).toBeCloseTo(deferred * 0.32, 6);
    // The cluster's whole emissions, idle included, differ by the same (to their rounding); metering, which
    // charges each job its whole node's draw here, would say twice as much.
    expect(blind.energy.carbonKg - aware.energy.carbonKg).toBeCloseTo(deferred * 0.32, 1);
    expect(blind.energy.jobCarbonKg - aware.energy.jobCarbonKg).toBeCloseTo(deferred * 0.64, 1);
  });

  test('green-aware with a live forecaster keeps its deadlines through node failures: a plan leaves room to run again', () => {
    // The grid is clean from 11:00 to 14:00 every day; the forecaster has seen two such days.
    const grid = (atMs: number) => (((atMs % (24 * HOUR)) + 24 * HOUR) % (24 * HOUR) >= 11 * HOUR && ((atMs % (24 * HOUR)) + 24 * HOUR) % (24 * HOUR) < 14 * HOUR ? 100 : 500);
    const env: SimEnvironment = { ...environmentOf(undefined, { valueAt: grid, stepMs: HOUR / 2 }), greenShareAt: () => 0 };
    const warmed = () => {
      const f = makeForecaster('blend', { stepMs: env.stepMs });
      for (let t = -2 * 24 * HOUR; t < 0; t += env.stepMs) f.observe(t, grid(t));
      return f;
    };
    // One hour's run, due by 13:00 (latest start 12:00); every node fails from 11:30 to 12:30.
    const jobs = [gang('due', 0, 1, 3600, { priorityClass: 'batch' })];
    jobs[0].job.deferrable = { deadlineMs: 13 * HOUR };
    const nodes = hpcNodes(40);
    const outages = nodes.map((n) => ({ nodeId: n.id, atMs: 11.5 * HOUR, repairAtMs: 12.5 * HOUR }));
    const [aware] = policiesNamed('green-aware');
    // Planned to 11:00 without the room, it is killed at 11:30, runs again from 12:30 and misses.
    const tight = simulate(jobs, nodes, processorLevel(aware), env, { forecaster: warmed(), outages, rerunMargin: false });
    expect(tight.deferrable.deadlineMisses).toBe(1);
    // With outages on, a plan must start by latest start − safety − one run (10:00): no clean start is left, it runs now.
    const safe = simulate(jobs, nodes, processorLevel(aware), env, { forecaster: warmed(), outages });
    expect(safe.deferrable).toMatchObject({ jobs: 1, deadlineMisses: 0 });
    expect(safe.waitS.max).toBe(0);
  });

  test("a run a node failure cut short is not counted as the job's wait in the green comparison (it is in waitS)", () => {
    // One node; a job runs from 0 and is killed at 10 min; the node is back at 40 min and the job runs again.
    const nodes = hpcNodes(1);
    const outages = [{ nodeId: 'n0', atMs: 600_000, repairAtMs: 2_400_000 }];
    const r = simulate([gang('hit', 0, 1, 3600)], nodes, processorLevel(policy('fifo')), environmentOf(), { outages });
    expect(r.jobs).toMatchObject({ completed: 1, interrupted: 1 });
    expect(r.waitS.max).toBe(2400);
    // Queued from the failure (10 min) to the repair (40 min): 30 min, not the 10 min it ran before.
    expect(r.deferrable.othersMeanWaitS).toBe(1800);
    expect(r.deferrable.othersMeanWaitSByPool).toEqual({ super: 1800 });
  });

  test('power caps are never exceeded, whatever the workload (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 1.1, max: 2, noNaN: true }), (seed, headroom) => {
        const t = loadTrace('synthetic:poisson', { jobs: 400, nodes: 60, load: 1.2, seed });
        const idle = environmentOf();
        // Caps between the pools' idle draw and their full draw.
        const idleKw: Record<string, number> = {};
        for (const n of t.cluster!) idleKw[n.pool] = (idleKw[n.pool] ?? 0) + (idle.idleFraction * idle.ratedWatts(n)) / 1000;
        const capKw = (pool: string) => idleKw[pool] * headroom;
        const env: SimEnvironment = { ...idle, powerCapKwAt: (key) => (key in idleKw ? capKw(key) : undefined) };
        const r = simulate(t.jobs, t.cluster!, policy('priority-fair'), env, { samples: 1000 });
        for (const pool of ['general', 'intelligent', 'super'] as const) {
          for (const kw of r.timeline.powerKwByPool[pool]) expect(kw).toBeLessThanOrEqual(capKw(pool) + 0.0005); // samples are rounded to the watt
          // Samples may miss a moment; the peak may not.
          expect(r.peakPowerKwByPool[pool]).toBeLessThanOrEqual(capKw(pool) + 1e-9);
        }
        expect(r.powerCapHolds).toBeGreaterThan(0);
        // Jobs that alone would draw more than a cap allows stay waiting: held, never lost.
        expect(r.jobs.completed + r.jobs.rejected + r.jobs.unfinished).toBe(400);
      }),
      { numRuns: 8 },
    );
  });

  test('a synthetic mixed workload runs in every pool under every policy', () => {
    const t = loadTrace('synthetic:bursty', { jobs: 3000, nodes: 200, load: 0.9, seed: 3 });
    for (const p of Object.values(SIM_POLICIES).map((x) => x.make())) {
      const r = simulate(t.jobs, t.cluster!, p, environmentOf());
      expect(r.jobs.completed + r.jobs.rejected, p.name).toBe(3000);
      expect(Object.keys(r.utilisationByPool).sort(), p.name).toEqual(['general', 'intelligent', 'super']);
      expect(r.gpuFragmentation, p.name).not.toBeNull();
      // In submit order a reservation is a promise; in priority order a more urgent arrival may take the head's place.
      if (p.order === 'fifo') expect(r.reservationViolations, p.name).toBe(0);
    }
    // About 15 CPU-seconds for every policy: room for a machine whose cores are busy with other work.
  }, 240_000);
});
