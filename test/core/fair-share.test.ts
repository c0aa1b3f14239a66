import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, FairShare, PendingQueue, placeJob, withPoolPolicy, type AttemptOutcome, type Policy, type SchedJob } from '../../src/core';
import { MinHeap } from '../../src/core/min-heap';
import { seededRng } from '../../src/sim/rng';
import { GiB, job, nodeSpec } from './fixtures';

/** Places what fits, in the queue's order, reserving it in the cluster. */
function cycle(cluster: ClusterState, queue: PendingQueue, fair: FairShare, nowMs: number, onPlaced: (j: SchedJob) => void = () => undefined, policy: Policy = DEFAULT_POLICY) {
  return queue.runCycle(
    (j): AttemptOutcome => {
      const r = placeJob(cluster, j, policy);
      if (!r.ok) return { ok: false, sameForShape: true, failure: r };
      cluster.reserve(r.placement);
      onPlaced(j);
      return { ok: true };
    },
    100_000,
    fair.comparator(nowMs),
  );
}

describe('weighted dominant resource fairness', () => {
  test('the example of the DRF paper: 9 CPUs and 18 GB; A asks <1 CPU, 4 GB>, B asks <3 CPUs, 1 GB>', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n', { capacity: { cpuMillis: 9000, memBytes: 18 * GiB } }));
    const fair = new FairShare(cluster, { weightOf: () => 1, agingMs: 1e12 });
    const queue = new PendingQueue();
    for (let i = 0; i < 10; i++) {
      queue.add(job({ id: `a${i}`, tenant: 'a', submittedAtMs: i, resources: { cpuMillis: 1000, memBytes: 4 * GiB } }));
      queue.add(job({ id: `b${i}`, tenant: 'b', submittedAtMs: i, resources: { cpuMillis: 3000, memBytes: GiB } }));
    }
    cycle(cluster, queue, fair, 100);
    expect(cluster.usageOf('a', 'general').jobs).toBe(3);
    expect(cluster.usageOf('b', 'general').jobs).toBe(2);
    expect(fair.dominantShare('a', 'general')).toBeCloseTo(12 / 18);
    expect(fair.dominantShare('b', 'general')).toBeCloseTo(6 / 9);
  });

  test('a higher priority class goes first whatever the shares', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n', { capacity: { cpuMillis: 2000, memBytes: GiB } }));
    const fair = new FairShare(cluster, { weightOf: () => 1, agingMs: 1e12 });
    const queue = new PendingQueue();
    queue.add(job({ id: 'low', tenant: 'idle', priority: 100, submittedAtMs: 1, resources: { cpuMillis: 2000, memBytes: 0 } }));
    queue.add(job({ id: 'urgent', tenant: 'busy', priority: 1000, submittedAtMs: 2, resources: { cpuMillis: 2000, memBytes: 0 } }));
    const order: string[] = [];
    cycle(cluster, queue, fair, 10, (j) => order.push(j.id));
    expect(order).toEqual(['urgent']);
  });

  test('aging: a job that waited long enough goes ahead of a tenant with a smaller share', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n', { capacity: { cpuMillis: 10_000, memBytes: 10 * GiB } }));
    const held = placeJob(cluster, job({ id: 'held', tenant: 'big', resources: { cpuMillis: 8000, memBytes: 0 } }), DEFAULT_POLICY);
    if (held.ok) cluster.reserve(held.placement);
    const fair = new FairShare(cluster, { weightOf: () => 1, agingMs: 60_000 });
    const old = job({ id: 'old', tenant: 'big', submittedAtMs: 0, resources: { cpuMillis: 2000, memBytes: 0 } });
    const fresh = job({ id: 'fresh', tenant: 'small', submittedAtMs: 100_000, resources: { cpuMillis: 2000, memBytes: 0 } });
    // At t=100 s the old job has waited 100 s (1.67 shares of aging) against big's 0.8 share.
    expect(fair.comparator(100_000)(old, fresh)).toBeLessThan(0);
    // Early on, the small tenant goes first.
    expect(fair.comparator(10_000)({ ...old, submittedAtMs: 9_000 }, fresh)).toBeGreaterThan(0);
  });

  test('competing tenants converge to their weighted fair shares, and no job waits forever (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 4 }),
        fc.array(fc.constantFrom(1, 2, 4, 8), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (weights, coresOf, seed) => {
          const rng = seededRng(seed);
          const tenants = weights.map((w, i) => ({ name: `t${i}`, weight: w, cores: coresOf[i] }));
          const cluster = new ClusterState();
          for (let i = 0; i < 16; i++) cluster.upsertNode(nodeSpec(`n${i}`, { capacity: { cpuMillis: 32_000, memBytes: 1024 * GiB } }));
          const fair = new FairShare(cluster, { weightOf: (t) => tenants.find((x) => x.name === t)!.weight, agingMs: 3_600_000 });
          const queue = new PendingQueue();
          const ends = new MinHeap<string>();
          const submitted = new Map<string, number>();
          let seq = 0;
          // Every tenant keeps a backlog: when one of its jobs starts, another joins the queue.
          const submit = (t: (typeof tenants)[number], nowMs: number) => {
            const j = job({ id: `j${seq++}`, tenant: t.name, submittedAtMs: nowMs, resources: { cpuMillis: t.cores * 1000, memBytes: GiB } });
            submitted.set(j.id, nowMs);
            queue.add(j);
          };
          for (const t of tenants) for (let k = 0; k < 40; k++) submit(t, 0);
          const share = new Map<string, number>(tenants.map((t) => [t.name, 0]));
          let samples = 0;
          let maxWaitMs = 0;
          let nowMs = 0;
          // Packing keeps nodes whole for the larger jobs: spreading 1-core jobs would fragment every node,
          // and fragmentation (not the fair-share order) would decide who fits.
          const packing = withPoolPolicy(DEFAULT_POLICY, { general: { candidateOrder: 'pack', scoreWeights: { MostAllocated: 1 } } });
          const place = () =>
            cycle(
              cluster,
              queue,
              fair,
              nowMs,
              (j) => {
                maxWaitMs = Math.max(maxWaitMs, nowMs - submitted.get(j.id)!);
                ends.push(nowMs + 1_000 + Math.floor(rng() * 59_000), j.id);
                submit(tenants.find((t) => t.name === j.tenant)!, nowMs);
              },
              packing,
            );
          place();
          for (let step = 0; step < 3_000; step++) {
            nowMs = ends.peekKey();
            while (ends.peekKey() <= nowMs) cluster.release(ends.pop()!);
            queue.markDirty('general');
            place();
            if (step >= 1_000) {
              samples++;
              for (const t of tenants) share.set(t.name, share.get(t.name)! + fair.dominantShare(t.name, 'general'));
            }
          }
          const totalWeight = tenants.reduce((s, t) => s + t.weight, 0);
          for (const t of tenants) {
            const average = share.get(t.name)! / samples;
            // Tolerance: job sizes divide the 32-core nodes, so this is granularity (8 cores of 512) and churn.
            expect(Math.abs(average - t.weight / totalWeight), `${t.name} weight ${t.weight} cores ${t.cores}`).toBeLessThan(0.06);
          }
          // The longest wait stays within a few job lengths: nobody is starved.
          expect(maxWaitMs).toBeLessThan(10 * 60_000);
        },
      ),
      { numRuns: 20 },
    );
  });
});
