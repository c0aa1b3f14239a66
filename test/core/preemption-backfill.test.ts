import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, backfillAllowed, byEndTime, easyReservation, findPreemption, placeJob, prepareJob, type SchedJob, type VictimInfo } from '../../src/core';
import { MinHeap } from '../../src/core/min-heap';
import { seededRng } from '../../src/sim/rng';
import { GiB, job, nodeSpec } from './fixtures';

function snapshot(cluster: ClusterState) {
  return cluster.nodes().map((n) => [n.id, n.requestedCpuMillis, n.requestedMemBytes, n.taskCount].join(':'));
}

describe('preemption', () => {
  /** Two 8-core nodes; places jobs as listed; returns the cluster and what preemption needs to know. */
  function busy(placements: { id: string; node: string; cores: number; priority: number; startedAtMs?: number; preemptible?: boolean }[]) {
    const cluster = new ClusterState();
    for (const id of ['n1', 'n2']) cluster.upsertNode(nodeSpec(id, { labels: { host: id }, capacity: { cpuMillis: 8000, memBytes: 64 * GiB } }));
    const info = new Map<string, VictimInfo>();
    for (const p of placements) {
      const j = job({ id: p.id, priority: p.priority, resources: { cpuMillis: p.cores * 1000, memBytes: 0 }, constraints: { nodeSelector: { host: p.node } } });
      const r = placeJob(cluster, j, DEFAULT_POLICY);
      if (!r.ok) throw new Error(`setup: ${p.id} does not fit`);
      cluster.reserve(r.placement);
      info.set(p.id, { priority: p.priority, startedAtMs: p.startedAtMs ?? 0, preemptible: p.preemptible ?? true });
    }
    return { cluster, info: (id: string) => info.get(id) };
  }

  test('the fewest victims: one job on one node rather than two on the other', () => {
    const { cluster, info } = busy([
      { id: 'a', node: 'n1', cores: 4, priority: 100 },
      { id: 'b', node: 'n1', cores: 4, priority: 100 },
      { id: 'c', node: 'n2', cores: 8, priority: 100 },
    ]);
    const before = snapshot(cluster);
    const plan = findPreemption(cluster, prepareJob(job({ priority: 1000, resources: { cpuMillis: 6000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY, info);
    expect(plan?.victims).toEqual(['c']);
    expect(plan?.placement.tasks[0].nodeId).toBe('n2');
    expect(snapshot(cluster)).toEqual(before);
  });

  test('the lowest victims: best-effort before batch, and only as many as needed (reprieve)', () => {
    const { cluster, info } = busy([
      { id: 'batch', node: 'n1', cores: 4, priority: 100 },
      { id: 'effort', node: 'n1', cores: 4, priority: 0 },
      { id: 'urgent', node: 'n2', cores: 8, priority: 1000 },
    ]);
    const plan = findPreemption(cluster, prepareJob(job({ priority: 500, resources: { cpuMillis: 4000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY, info);
    expect(plan?.victims).toEqual(['effort']);
  });

  test('never a job of the same or a higher class; none when that is all there is', () => {
    const { cluster, info } = busy([
      { id: 'same', node: 'n1', cores: 8, priority: 500 },
      { id: 'higher', node: 'n2', cores: 8, priority: 1000 },
    ]);
    expect(findPreemption(cluster, prepareJob(job({ priority: 500, resources: { cpuMillis: 1000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY, info)).toBeNull();
  });

  test('the storm guard: a job not preemptible now is left alone', () => {
    const { cluster, info } = busy([
      { id: 'guarded', node: 'n1', cores: 8, priority: 0, preemptible: false },
      { id: 'other', node: 'n2', cores: 4, priority: 100 },
      { id: 'other2', node: 'n2', cores: 4, priority: 100 },
    ]);
    const plan = findPreemption(cluster, prepareJob(job({ priority: 1000, resources: { cpuMillis: 8000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY, info);
    expect(plan?.victims.sort()).toEqual(['other', 'other2']);
  });

  test('among equals the newest goes first: it loses the least work', () => {
    const { cluster, info } = busy([
      { id: 'old', node: 'n1', cores: 8, priority: 100, startedAtMs: 1 },
      { id: 'new', node: 'n2', cores: 8, priority: 100, startedAtMs: 9 },
    ]);
    const plan = findPreemption(cluster, prepareJob(job({ priority: 1000, resources: { cpuMillis: 8000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY, info);
    expect(plan?.victims).toEqual(['new']);
  });

  test('a gang finds its victims across nodes and the cluster is left as it was', () => {
    const { cluster, info } = busy([
      { id: 'x', node: 'n1', cores: 8, priority: 0 },
      { id: 'y', node: 'n2', cores: 6, priority: 0 },
    ]);
    const before = snapshot(cluster);
    const plan = findPreemption(cluster, prepareJob(job({ priority: 1000, tasks: 2, resources: { cpuMillis: 4000, memBytes: 0 } }), DEFAULT_POLICY), DEFAULT_POLICY, info);
    expect(plan?.victims.sort()).toEqual(['x']);
    expect(plan?.placement.tasks).toHaveLength(2);
    expect(snapshot(cluster)).toEqual(before);
  });
});

describe('EASY backfilling', () => {
  /** Four whole HPC nodes. */
  function hpc(): ClusterState {
    const cluster = new ClusterState();
    for (let i = 0; i < 4; i++) cluster.upsertNode(nodeSpec(`h${i}`, { pool: 'super' }));
    return cluster;
  }
  const gang = (id: string, tasks: number, walltimeSeconds: number) => job({ id, pool: 'super', tasks, walltimeSeconds, resources: { cpuMillis: 1000, memBytes: 0 } });

  test('the head gets the earliest time enough nodes free up; short jobs fit before it, long ones only beside it', () => {
    const cluster = hpc();
    const running = gang('running', 3, 100);
    const r = placeJob(cluster, running, DEFAULT_POLICY);
    if (!r.ok) throw new Error('setup');
    cluster.reserve(r.placement);
    const head = prepareJob(gang('head', 4, 50), DEFAULT_POLICY);
    expect(placeJob(cluster, head, DEFAULT_POLICY).ok).toBe(false);
    const reservation = easyReservation(cluster, head, DEFAULT_POLICY, [{ jobId: 'running', endMs: 100_000 }], 0)!;
    expect(reservation.startMs).toBe(100_000);

    const short = placeJob(cluster, gang('short', 1, 60), DEFAULT_POLICY);
    const long = placeJob(cluster, gang('long', 1, 600), DEFAULT_POLICY);
    if (!short.ok || !long.ok) throw new Error('setup');
    const ends = [{ jobId: 'running', endMs: 100_000 }];
    expect(backfillAllowed(cluster, reservation, ends, short.placement, 60_000)).toBe(true);
    expect(backfillAllowed(cluster, reservation, ends, long.placement, 600_000)).toBe(false);
  });

  test('no reservation when the head could never start from what is running', () => {
    const cluster = hpc();
    expect(easyReservation(cluster, prepareJob(gang('huge', 5, 10), DEFAULT_POLICY), DEFAULT_POLICY, [], 0)).toBeNull();
  });

  test('backfill never starts the head later than its first reservation (property, exact walltimes)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
        const rng = seededRng(seed);
        const cluster = new ClusterState();
        for (let i = 0; i < 8; i++) cluster.upsertNode(nodeSpec(`h${i}`, { pool: 'super' }));
        // A queue of gangs in submission order; each runs exactly its walltime.
        const queue: SchedJob[] = Array.from({ length: 40 }, (_, i) => gang(`g${i}`, 1 + Math.floor(rng() * 8), 10 + Math.floor(rng() * 300)));
        const ends = new MinHeap<string>();
        const endOf = new Map<string, number>();
        const promised = new Map<string, number>();
        let nowMs = 0;
        const schedule = () => {
          let reservation: ReturnType<typeof easyReservation> = null;
          for (let i = 0; i < queue.length; ) {
            const j = queue[i];
            const p = prepareJob(j, DEFAULT_POLICY);
            const r = placeJob(cluster, p, DEFAULT_POLICY);
            const endMs = nowMs + j.walltimeMs!;
            const running = () => [...cluster.placedJobIds()].map((id) => ({ jobId: id, endMs: endOf.get(id)! })).sort(byEndTime);
            if (r.ok && (!reservation || backfillAllowed(cluster, reservation, running(), r.placement, endMs))) {
              cluster.reserve(r.placement);
              ends.push(endMs, j.id);
              endOf.set(j.id, endMs);
              if (promised.has(j.id)) expect(nowMs, `${j.id} started after its reservation`).toBeLessThanOrEqual(promised.get(j.id)!);
              queue.splice(i, 1);
              continue;
            }
            if (!reservation && !r.ok) {
              reservation = easyReservation(cluster, p, DEFAULT_POLICY, running(), nowMs);
              if (reservation && !promised.has(j.id)) promised.set(j.id, reservation.startMs);
            }
            i++;
          }
        };
        schedule();
        while (ends.size > 0) {
          nowMs = ends.peekKey();
          while (ends.peekKey() <= nowMs) cluster.release(ends.pop()!);
          schedule();
        }
        expect(queue).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});
