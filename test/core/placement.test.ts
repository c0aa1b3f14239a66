import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, assertValidPolicy, formatFailure, placeJob, withPoolPolicy, type PlacementResult, type SchedJob } from '../../src/core';
import type { NodeSpec } from '../../src/protocol';
import { GiB, gpuNodeSpec, job, nodeSpec } from './fixtures';

function clusterOf(specs: NodeSpec[]): ClusterState {
  const cluster = new ClusterState();
  for (const s of specs) cluster.upsertNode(s);
  return cluster;
}

function place(cluster: ClusterState, j: SchedJob): PlacementResult {
  const result = placeJob(cluster, j, DEFAULT_POLICY);
  if (result.ok) cluster.reserve(result.placement);
  return result;
}

function mustPlace(cluster: ClusterState, j: SchedJob) {
  const result = place(cluster, j);
  if (!result.ok) throw new Error(`expected ${j.id} to fit: ${formatFailure(result)}`);
  return result.placement;
}

const gpuJob = (gpus: number, extra: Partial<Parameters<typeof job>[0]> = {}) => job({ pool: 'intelligent', resources: { cpuMillis: 4000, memBytes: 16 * GiB, gpus }, ...extra });
const shareJob = (gpuMilli: number) => job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: GiB, gpuMilli } });

describe('single tasks', () => {
  test('whole GPUs get the lowest free indices and are packed onto a server already in use', () => {
    const cluster = clusterOf([gpuNodeSpec('g1'), gpuNodeSpec('g2')]);
    const first = mustPlace(cluster, gpuJob(2));
    const second = mustPlace(cluster, gpuJob(4));
    expect(first.tasks[0].gpuIndices).toEqual([0, 1]);
    expect(second.tasks[0].nodeId).toBe(first.tasks[0].nodeId);
    expect(second.tasks[0].gpuIndices).toEqual([2, 3, 4, 5]);
    expect(second.tasks[0].gpuMilliEach).toBe(1000);
  });

  test('an 8-GPU job still finds the untouched server after packing', () => {
    const cluster = clusterOf([gpuNodeSpec('g1'), gpuNodeSpec('g2')]);
    for (let i = 0; i < 4; i++) mustPlace(cluster, gpuJob(1));
    const big = mustPlace(cluster, gpuJob(8));
    const small = cluster.placementOf(cluster.placedJobIds().next().value!)!;
    expect(big.tasks[0].nodeId).not.toBe(small.tasks[0].nodeId);
  });

  test('GPU shares fill a partly used GPU before breaking a whole one, and never exceed 1000 milli', () => {
    const cluster = clusterOf([gpuNodeSpec('g1', { capacity: { cpuMillis: 64_000, memBytes: 256 * GiB, gpus: 2, gpuMemBytes: 80 * GiB } })]);
    const a = mustPlace(cluster, shareJob(600));
    const b = mustPlace(cluster, shareJob(300));
    const c = mustPlace(cluster, shareJob(500));
    expect(a.tasks[0].gpuIndices).toEqual([0]);
    expect(b.tasks[0].gpuIndices).toEqual([0]);
    expect(c.tasks[0].gpuIndices).toEqual([1]);
    const node = cluster.getNode('g1')!;
    expect([...node.gpuUsedMilli]).toEqual([900, 500]);
    const d = place(cluster, shareJob(600));
    expect(d.ok).toBe(false);
  });

  test('the general pool spreads: consecutive jobs land on different empty nodes', () => {
    const cluster = clusterOf([nodeSpec('a'), nodeSpec('b'), nodeSpec('c')]);
    const nodes = [1, 2, 3].map(() => mustPlace(cluster, job()).tasks[0].nodeId);
    expect(new Set(nodes).size).toBe(3);
  });

  test('exclusive tasks in the super pool take the whole node', () => {
    const cluster = clusterOf([nodeSpec('h1', { pool: 'super' })]);
    const p = mustPlace(cluster, job({ pool: 'super', resources: { cpuMillis: 1000, memBytes: GiB } }));
    expect(p.exclusive).toBe(true);
    expect(p.tasks[0].cpuMillis).toBe(16_000);
    expect(p.tasks[0].memBytes).toBe(64 * GiB);
    const second = place(cluster, job({ pool: 'super', resources: { cpuMillis: 1000, memBytes: GiB } }));
    expect(second.ok).toBe(false);
    if (!second.ok) expect(second.reasons).toEqual({ 'node-not-idle': 1 });
  });

  test('the highest green share wins among otherwise equal nodes', () => {
    const policy = withPoolPolicy(DEFAULT_POLICY, { general: { scoreWeights: { GreenShare: 1 } } });
    const cluster = clusterOf([nodeSpec('a'), nodeSpec('b'), nodeSpec('c')]);
    cluster.setNodeTelemetry('b', 300, 0.9);
    cluster.setNodeTelemetry('c', 300, 0.4);
    const result = placeJob(cluster, job(), policy);
    expect(result.ok && result.placement.tasks[0].nodeId).toBe('b');
  });

  test('however much green share weighs, it never places on a node that cannot take the job (property)', () => {
    const policy = withPoolPolicy(DEFAULT_POLICY, { general: { scoreWeights: { GreenShare: 100, LeastAllocated: 1 }, nodesToScore: 16 } });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 16 }), fc.boolean()), { minLength: 2, maxLength: 12 }), fc.integer({ min: 1, max: 16 }), (nodes, cores) => {
        const cluster = clusterOf(nodes.map(([, c, cordoned], i) => nodeSpec(`n${i}`, { capacity: { cpuMillis: c * 1000 }, labels: cordoned ? { tier: 'x' } : {} })));
        nodes.forEach(([green, , cordoned], i) => {
          cluster.setNodeTelemetry(`n${i}`, 300, green);
          if (cordoned) cluster.setNodeState(`n${i}`, 'cordoned');
        });
        const result = placeJob(cluster, job({ resources: { cpuMillis: cores * 1000, memBytes: 0 } }), policy);
        const feasible = nodes.filter(([, c, cordoned]) => !cordoned && c >= cores).length;
        expect(result.ok).toBe(feasible > 0);
        if (!result.ok) return;
        const [, c, cordoned] = nodes[Number(result.placement.tasks[0].nodeId.slice(1))];
        expect(cordoned).toBe(false);
        expect(c).toBeGreaterThanOrEqual(cores);
      }),
      { numRuns: 300 },
    );
  });

  test('equal scores go to the smallest node id', () => {
    const policy = withPoolPolicy(DEFAULT_POLICY, { general: { scoreWeights: { GreenShare: 1 }, nodesToScore: 10 } });
    const cluster = clusterOf([nodeSpec('n3'), nodeSpec('n1'), nodeSpec('n2')]);
    const result = placeJob(cluster, job(), policy);
    expect(result.ok && result.placement.tasks[0].nodeId).toBe('n1');
  });
});

describe('work that can wait', () => {
  test('in the general pool a deferrable job packs onto the fullest node that fits, where the others spread', () => {
    // Eight 16-core nodes, each with some cores taken: a job that cannot wait goes to the emptiest, a
    // deferrable one to the fullest that fits, so the room it leaves stays whole for a large task.
    const cluster = clusterOf(Array.from({ length: 8 }, (_, i) => nodeSpec(`n${i}`)));
    for (let i = 0; i < 8; i++) mustPlace(cluster, job({ resources: { cpuMillis: (i + 2) * 1000, memBytes: GiB } }));
    const used = (nodeId: string) => cluster.getNode(nodeId)!.requestedCpuMillis;
    const usedBefore = new Map([...Array(8).keys()].map((i) => [`n${i}`, used(`n${i}`)]));
    const fullest = [...usedBefore].sort((a, b) => b[1] - a[1])[0];
    const emptiest = [...usedBefore].sort((a, b) => a[1] - b[1])[0];
    const deferrable = mustPlace(cluster, job({ resources: { cpuMillis: 4000, memBytes: GiB }, deferrable: { maxDelaySeconds: 3600 } }));
    expect(deferrable.tasks[0].nodeId).toBe(fullest[0]);
    const other = mustPlace(cluster, job({ resources: { cpuMillis: 4000, memBytes: GiB } }));
    expect(other.tasks[0].nodeId).toBe(emptiest[0]);
  });

  test("a pool's deferrable settings lay over its own, and a policy without them places deferrable jobs as any other", () => {
    const spread = withPoolPolicy(DEFAULT_POLICY, { general: { deferrable: undefined } });
    const cluster = clusterOf([nodeSpec('n0'), nodeSpec('n1')]);
    mustPlace(cluster, job({ resources: { cpuMillis: 8000, memBytes: GiB } }));
    const busy = cluster.placementOf(cluster.placedJobIds().next().value!)!.tasks[0].nodeId;
    const r = placeJob(cluster, job({ resources: { cpuMillis: 2000, memBytes: GiB }, deferrable: { maxDelaySeconds: 60 } }), spread);
    expect(r.ok && r.placement.tasks[0].nodeId).not.toBe(busy);
    expect(() => assertValidPolicy(withPoolPolicy(DEFAULT_POLICY, { general: { deferrable: { scoreWeights: { NoSuchScore: 1 } } } }))).toThrow(/unknown score plugin NoSuchScore/);
  });
});

describe('reasons', () => {
  test('counts every node under the first filter that rejected it', () => {
    const cluster = clusterOf([
      gpuNodeSpec('a1'),
      gpuNodeSpec('a2'),
      gpuNodeSpec('h1', { gpuModel: 'H20' }),
      gpuNodeSpec('h2', { gpuModel: 'H20' }),
      gpuNodeSpec('h3', { gpuModel: 'H20' }),
    ]);
    mustPlace(cluster, gpuJob(8, { constraints: { gpuModels: ['H20'] } }));
    mustPlace(cluster, gpuJob(7, { constraints: { gpuModels: ['H20'] } }));
    cluster.setNodeState('h3', 'cordoned');
    const result = place(cluster, gpuJob(2, { constraints: { gpuModels: ['H20'] } }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.never).toBe(false);
    expect(result.reasons).toEqual({ 'gpu-model-mismatch': 2, 'insufficient-gpus': 2, 'node-cordoned': 1 });
    expect(formatFailure(result)).toBe('0/5 nodes fit: 2 GPU model is not H20, 2 insufficient gpus, 1 cordoned');
  });

  test('a job larger than any node never fits and says so', () => {
    const cluster = clusterOf([nodeSpec('a'), nodeSpec('b')]);
    const result = place(cluster, job({ resources: { cpuMillis: 32_000, memBytes: GiB } }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.never).toBe(true);
    expect(formatFailure(result)).toBe('never fits: 0/2 nodes could hold it even when empty: 2 too small for one task even when empty');
  });

  test('an unknown GPU model never fits', () => {
    const cluster = clusterOf([gpuNodeSpec('a')]);
    const result = place(cluster, gpuJob(1, { constraints: { gpuModels: ['B200'] } }));
    expect(result.ok === false && result.never).toBe(true);
  });

  test('a full pool is a wait, not a never', () => {
    const cluster = clusterOf([nodeSpec('a')]);
    mustPlace(cluster, job({ resources: { cpuMillis: 16_000, memBytes: GiB } }));
    const result = place(cluster, job());
    expect(result.ok === false && result.never).toBe(false);
  });

  test('a pool without nodes explains itself', () => {
    const result = place(new ClusterState(), job());
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatFailure(result)).toBe('no nodes in the pool');
  });

  test('a fractional-core request on a boundary level is checked exactly', () => {
    const cluster = clusterOf([nodeSpec('a'), nodeSpec('b')]);
    mustPlace(cluster, job({ resources: { cpuMillis: 13_800, memBytes: GiB } })); // a node keeps 2.2 cores
    mustPlace(cluster, job({ resources: { cpuMillis: 13_400, memBytes: GiB } })); // the other keeps 2.6 cores
    const result = place(cluster, job({ resources: { cpuMillis: 2500, memBytes: GiB } }));
    expect(result.ok).toBe(true);
    const again = place(cluster, job({ resources: { cpuMillis: 2500, memBytes: GiB } }));
    expect(again.ok === false && again.reasons).toEqual({ 'insufficient-cpu': 2 });
  });

  test('a node short of both CPU and memory is counted under CPU, the first resource checked', () => {
    const cluster = clusterOf([nodeSpec('a')]);
    mustPlace(cluster, job({ resources: { cpuMillis: 13_800, memBytes: 60 * GiB } })); // 2.2 cores and 4 GiB left
    const result = place(cluster, job({ resources: { cpuMillis: 2500, memBytes: 8 * GiB } }));
    expect(result.ok === false && result.reasons).toEqual({ 'insufficient-cpu': 1 });
  });
});
