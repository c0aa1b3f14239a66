import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  ClusterState,
  DEFAULT_POLICY,
  FALLBACK_DEMAND,
  GpuDemandMix,
  MAX_NODE_SCORE,
  expectedFragmentMilli,
  freeGpuMilli,
  freeGpuMilliAfter,
  gpuFragmentationOf,
  observeGpuDemand,
  placeJob,
  prepareJob,
  withGpuDemandMix,
  withPoolPolicy,
  type DemandShape,
  type NodeRuntime,
  type Policy,
  type SchedJob,
} from '../../src/core';
import { fragmentationGradient, resourceAlignment } from '../../src/core/scores';
import { GiB, gpuNodeSpec, job, nodeSpec } from './fixtures';

const shape = (s: Partial<DemandShape> & { milliPerGpu: number }): DemandShape => ({ gpuCount: 1, cpuMillis: 0, memBytes: 0, gpuModels: null, weight: 1, ...s });
const WHOLE = shape({ milliPerGpu: 1000 });
const share = (milli: number, weight = 1) => shape({ milliPerGpu: milli, weight });
const gpuJob = (resources: { gpus?: number; gpuMilli?: number; cpuMillis?: number; memBytes?: number }, extra: Partial<Parameters<typeof job>[0]> = {}) =>
  job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: GiB, ...resources }, ...extra });

let taken = 0;

/** Takes `milli` of the GPUs given, one task each, without going through a policy. */
function use(cluster: ClusterState, node: NodeRuntime, gpus: { index: number; milli: number }[], cpuMillis = 0, memBytes = 0): void {
  cluster.reserve({
    jobId: `taken-${++taken}`,
    tenant: 't',
    pool: node.spec.pool,
    dataClass: 'public',
    exclusive: false,
    tasks: gpus.map((g, i) => ({ taskIndex: i, nodeId: node.id, cpuMillis: i === 0 ? cpuMillis : 0, memBytes: i === 0 ? memBytes : 0, gpuIndices: [g.index], gpuMilliEach: g.milli, extended: {} })),
  });
}

describe('expectedFragmentMilli (FGD\'s fragmentation of one node)', () => {
  const cases: { name: string; free: number[]; cpu?: number; mem?: number; model?: string; mix: DemandShape[]; want: number }[] = [
    { name: 'an empty node has no fragments for a whole GPU', free: [1000, 1000], mix: [WHOLE], want: 0 },
    { name: 'a full node has nothing free, so no fragments', free: [0, 0], mix: [WHOLE], want: 0 },
    { name: 'a partly used GPU is a fragment for a whole-GPU request that fits elsewhere', free: [1000, 300], mix: [WHOLE], want: 300 },
    { name: 'nothing a request cannot use: every GPU holds the share', free: [1000, 300], mix: [share(200)], want: 0 },
    { name: 'GPUs too full for the share are fragments when it fits elsewhere', free: [1000, 300], mix: [share(500)], want: 300 },
    { name: 'everything free is a fragment when the request fits nowhere', free: [400, 300], mix: [share(500)], want: 700 },
    { name: 'too little CPU: everything free is a fragment', free: [1000, 300], cpu: 999, mix: [shape({ milliPerGpu: 1000, cpuMillis: 1000 })], want: 1300 },
    { name: 'too little memory: everything free is a fragment', free: [1000, 300], mem: GiB - 1, mix: [shape({ milliPerGpu: 1000, memBytes: GiB })], want: 1300 },
    { name: 'another GPU model: everything free is a fragment', free: [1000, 1000], model: 'T4', mix: [shape({ milliPerGpu: 1000, gpuModels: new Set(['A800']) })], want: 2000 },
    { name: 'an accepted GPU model counts as any', free: [1000, 1000], model: 'A800', mix: [shape({ milliPerGpu: 1000, gpuModels: new Set(['A800']) })], want: 0 },
    { name: 'a two-GPU request with one whole GPU free fits nowhere', free: [1000, 600], mix: [shape({ milliPerGpu: 1000, gpuCount: 2 })], want: 1600 },
    { name: 'the mix weighs each request by its share', free: [1000, 300], mix: [share(500, 0.25), share(200, 0.75)], want: 75 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const free = Int32Array.from(c.free);
      expect(expectedFragmentMilli(free, free.length, c.cpu ?? 1e9, c.mem ?? 1e15, c.model ?? 'A800', c.mix)).toBeCloseTo(c.want, 6);
    });
  }

  test('only the first gpuCount entries count', () => {
    expect(expectedFragmentMilli(Int32Array.from([300, 1000, 1000]), 1, 1e9, 1e15, 'A800', [WHOLE])).toBe(300);
  });
});

describe('GpuDemandMix', () => {
  const request = (gpus: number, gpuMilli: number, cpuMillis = 1000) => ({ gpus, gpuMilli, cpuMillis, memBytes: GiB });

  test('before anything is observed the mix is one whole GPU', () => {
    expect(new GpuDemandMix().typical()).toBe(FALLBACK_DEMAND);
  });

  test('the mix is the share of each shape among the remembered requests, most frequent first', () => {
    const mix = new GpuDemandMix({ windowRequests: 100 });
    for (let i = 0; i < 3; i++) mix.observe(request(0, 500));
    mix.observe(request(1, 0));
    expect(mix.typical().map((s) => [s.gpuCount, s.milliPerGpu, s.weight])).toEqual([
      [1, 500, 0.75],
      [1, 1000, 0.25],
    ]);
  });

  test('requests without GPUs are not part of the mix', () => {
    const mix = new GpuDemandMix();
    mix.observe(request(0, 0));
    expect(mix.size).toBe(0);
    expect(mix.typical()).toBe(FALLBACK_DEMAND);
  });

  test('the window forgets the oldest requests', () => {
    const mix = new GpuDemandMix({ windowRequests: 16 });
    for (let i = 0; i < 16; i++) mix.observe(request(1, 0));
    for (let i = 0; i < 16; i++) mix.observe(request(0, 250));
    expect(mix.size).toBe(16);
    expect(mix.typical().map((s) => s.milliPerGpu)).toEqual([250]);
  });

  test('a gang counts once per task', () => {
    const mix = new GpuDemandMix({ windowRequests: 64 });
    mix.observe(request(8, 0), 3);
    mix.observe(request(0, 500));
    expect(mix.typical().map((s) => [s.gpuCount, s.weight])).toEqual([
      [8, 0.75],
      [1, 0.25],
    ]);
  });

  test('rare shapes beyond the coverage are left out and the rest renormalised', () => {
    const mix = new GpuDemandMix({ windowRequests: 100, coverage: 0.9 });
    for (let i = 0; i < 95; i++) mix.observe(request(1, 0));
    for (let i = 0; i < 5; i++) mix.observe(request(0, 100 + i));
    expect(mix.typical()).toEqual([expect.objectContaining({ milliPerGpu: 1000, weight: 1 })]);
  });

  test('what a score sees depends only on what was observed, not on how often the mix was read', () => {
    const observeAll = (mix: GpuDemandMix, readEvery: number) => {
      for (let i = 0; i < 500; i++) {
        mix.observe(request(i % 3 === 0 ? 1 : 0, i % 3 === 0 ? 0 : 100 * (1 + (i % 7)), 1000 * (i % 5)));
        if (i % readEvery === 0) mix.typical();
      }
      return mix.typical();
    };
    expect(observeAll(new GpuDemandMix({ windowRequests: 200 }), 1)).toEqual(observeAll(new GpuDemandMix({ windowRequests: 200 }), 97));
  });

  test('equal counts are ordered by shape, not by the order they were first seen', () => {
    const a = new GpuDemandMix();
    a.observe(request(0, 300));
    a.observe(request(0, 700));
    const b = new GpuDemandMix();
    b.observe(request(0, 700));
    b.observe(request(0, 300));
    expect(a.typical()).toEqual(b.typical());
  });

  test('reset forgets everything', () => {
    const mix = new GpuDemandMix();
    mix.observe(request(1, 0));
    mix.reset();
    expect(mix.size).toBe(0);
    expect(mix.typical()).toBe(FALLBACK_DEMAND);
  });

  test('nonsensical settings are refused', () => {
    expect(() => new GpuDemandMix({ windowRequests: 0 })).toThrow(/windowRequests/);
    expect(() => new GpuDemandMix({ coverage: 1.5 })).toThrow(/coverage/);
    expect(() => new GpuDemandMix({ maxShapes: 0 })).toThrow(/maxShapes/);
  });

  test('withGpuDemandMix gives each pool that uses the score a mix of its own, and observeGpuDemand feeds it', () => {
    const base = withPoolPolicy(DEFAULT_POLICY, { intelligent: { scoreWeights: { FragmentationGradient: 1 } } });
    const a = withGpuDemandMix(base);
    const b = withGpuDemandMix(base);
    expect(a.intelligent.gpuDemand).toBeInstanceOf(GpuDemandMix);
    expect(a.intelligent.gpuDemand).not.toBe(b.intelligent.gpuDemand);
    expect(a.general).toBe(base.general);
    observeGpuDemand(a, gpuJob({ gpuMilli: 300 }, { tasks: 1 }));
    observeGpuDemand(a, job({ pool: 'general' }));
    expect(a.intelligent.gpuDemand!.size).toBe(1);
    expect(b.intelligent.gpuDemand!.size).toBe(0);
  });
});

describe('freeGpuMilliAfter', () => {
  test('judges exactly the GPUs that planTasks gives the task', () => {
    const used = fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 8 });
    const task = fc.oneof(fc.record({ gpus: fc.integer({ min: 1, max: 8 }), gpuMilli: fc.constant(0) }), fc.record({ gpus: fc.constant(0), gpuMilli: fc.integer({ min: 1, max: 999 }) }));
    fc.assert(
      fc.property(used, task, (usedMilli, t) => {
        const cluster = new ClusterState();
        const node = cluster.upsertNode(gpuNodeSpec('g', { capacity: { gpus: usedMilli.length } }));
        const busy = usedMilli.map((milli, index) => ({ index, milli })).filter((g) => g.milli > 0);
        if (busy.length > 0) use(cluster, node, busy);
        const p = prepareJob(gpuJob(t), DEFAULT_POLICY);
        fc.pre(node.fitCount(p.task, 1) === 1);
        const predicted = Array.from(freeGpuMilliAfter(node, p.task, new Int32Array(8)).subarray(0, usedMilli.length));
        const planned: Parameters<typeof node.planTasks>[3] = [];
        node.planTasks(p.task, 1, 0, planned);
        cluster.reserve({ jobId: 'next', tenant: 't', pool: 'intelligent', dataClass: 'public', exclusive: false, tasks: planned });
        expect(predicted).toEqual(Array.from(freeGpuMilli(node, new Int32Array(8)).subarray(0, usedMilli.length)));
      }),
      { numRuns: 300 },
    );
  });

  test('an exclusive task leaves nothing free', () => {
    const cluster = new ClusterState();
    const node = cluster.upsertNode(gpuNodeSpec('g', { capacity: { gpus: 2 } }));
    const p = prepareJob(gpuJob({ gpus: 1 }, { exclusive: true }), DEFAULT_POLICY);
    expect(Array.from(freeGpuMilliAfter(node, p.task, new Int32Array(2)))).toEqual([0, 0]);
  });
});

describe('FragmentationGradient', () => {
  /** A policy whose intelligent pool weighs FragmentationGradient only, with a mix fed by `requests`. */
  function fgdPolicy(requests: SchedJob[]): Policy {
    const policy = withGpuDemandMix(withPoolPolicy(DEFAULT_POLICY, { intelligent: { scoreWeights: { FragmentationGradient: 1 }, nodesToScore: 100 } }));
    for (const r of requests) observeGpuDemand(policy, r);
    return policy;
  }

  test('scores are integers from 0 to 100; no change in fragmentation scores 50', () => {
    const cluster = new ClusterState();
    const cpuOnly = cluster.upsertNode(nodeSpec('c', { pool: 'intelligent' }));
    const gpu = cluster.upsertNode(gpuNodeSpec('g'));
    const policy = fgdPolicy([gpuJob({ gpus: 1 })]);
    expect(fragmentationGradient.score(prepareJob(job({ pool: 'intelligent' }), policy), cpuOnly)).toBe(50);
    // A whole GPU on an empty server leaves whole GPUs: fragmentation does not change.
    expect(fragmentationGradient.score(prepareJob(gpuJob({ gpus: 1 }), policy), gpu)).toBe(50);
    for (const milli of [1, 100, 470, 999]) {
      const s = fragmentationGradient.score(prepareJob(gpuJob({ gpuMilli: milli }), policy), gpu);
      expect(Number.isInteger(s) && s >= 0 && s <= MAX_NODE_SCORE).toBe(true);
    }
  });

  test('without a mix the score measures against one whole GPU', () => {
    const cluster = new ClusterState();
    const node = cluster.upsertNode(gpuNodeSpec('g'));
    const policy = withPoolPolicy(DEFAULT_POLICY, { intelligent: { scoreWeights: { FragmentationGradient: 1 } } });
    // 400 milli-GPUs of a fresh GPU become a 600 fragment for whole-GPU requests: 1 / (1 + e^0.6) = 0.354.
    expect(fragmentationGradient.score(prepareJob(gpuJob({ gpuMilli: 400 }), policy), node)).toBe(35);
  });

  test('a share goes where what it leaves can still be used, where packing would pick the fuller server', () => {
    // The mix asks for 600 milli-GPUs: a 400 share on a fresh GPU leaves exactly that, on a GPU with 700
    // free it leaves 300, which nothing of the mix can use.
    const cluster = new ClusterState();
    const empty = cluster.upsertNode(gpuNodeSpec('a-empty', { capacity: { gpus: 2 } }));
    const used = cluster.upsertNode(gpuNodeSpec('b-used', { capacity: { gpus: 2 } }));
    use(cluster, used, [{ index: 0, milli: 300 }]);
    const policy = fgdPolicy(Array.from({ length: 10 }, () => gpuJob({ gpuMilli: 600 })));
    const p = prepareJob(gpuJob({ gpuMilli: 400 }), policy);
    expect(fragmentationGradient.score(p, empty)).toBeGreaterThan(fragmentationGradient.score(p, used));
    const placed = placeJob(cluster, p, policy);
    expect(placed.ok && placed.placement.tasks[0].nodeId).toBe('a-empty');

    const packing = withPoolPolicy(DEFAULT_POLICY, { intelligent: { scoreWeights: { PackGpus: 1 }, nodesToScore: 100 } });
    const packed = placeJob(cluster, prepareJob(gpuJob({ gpuMilli: 400 }), packing), packing);
    expect(packed.ok && packed.placement.tasks[0].nodeId).toBe('b-used');
  });

  test('a share fills a fragment rather than breaking a whole GPU', () => {
    const cluster = new ClusterState();
    const empty = cluster.upsertNode(gpuNodeSpec('a-empty', { capacity: { gpus: 2 } }));
    const used = cluster.upsertNode(gpuNodeSpec('b-used', { capacity: { gpus: 2 } }));
    use(cluster, used, [{ index: 0, milli: 500 }]);
    const policy = fgdPolicy([gpuJob({ gpus: 1 }), gpuJob({ gpuMilli: 500 })]);
    const p = prepareJob(gpuJob({ gpuMilli: 500 }), policy);
    expect(fragmentationGradient.score(p, used)).toBeGreaterThan(50);
    expect(fragmentationGradient.score(p, empty)).toBeLessThan(50);
  });

  test('a task that would take the cores the GPUs beside it need scores lower', () => {
    const cluster = new ClusterState();
    const node = cluster.upsertNode(gpuNodeSpec('g', { capacity: { gpus: 2, cpuMillis: 16_000 } }));
    const policy = fgdPolicy([gpuJob({ gpus: 1, cpuMillis: 8000 })]);
    const light = fragmentationGradient.score(prepareJob(gpuJob({ gpus: 1, cpuMillis: 8000 }), policy), node);
    const heavy = fragmentationGradient.score(prepareJob(gpuJob({ gpus: 1, cpuMillis: 12_000 }), policy), node);
    expect(heavy).toBeLessThan(light);
  });
});

describe('FragmentationGradient memo', () => {
  test('a node changed between scores is scored as if seen for the first time', () => {
    const policy = withGpuDemandMix(withPoolPolicy(DEFAULT_POLICY, { intelligent: { scoreWeights: { FragmentationGradient: 1 } } }));
    for (const r of [gpuJob({ gpus: 1, cpuMillis: 30_000 }), gpuJob({ gpuMilli: 500 }), gpuJob({ gpuMilli: 300 })]) observeGpuDemand(policy, r);
    const fromScratch = (task: ReturnType<typeof prepareJob>, node: NodeRuntime) => {
      const gpus = node.gpuUsedMilli.length;
      const mix = policy.intelligent.gpuDemand!.typical();
      const now = expectedFragmentMilli(freeGpuMilli(node, new Int32Array(gpus)), gpus, node.freeCpuMillis, node.freeMemBytes, node.spec.gpuModel, mix);
      const after = expectedFragmentMilli(freeGpuMilliAfter(node, task.task, new Int32Array(gpus)), gpus, node.freeCpuMillis - task.task.cpuMillis, node.freeMemBytes - task.task.memBytes, node.spec.gpuModel, mix);
      return Math.floor(100 / (1 + Math.exp((after - now) / 1000)));
    };
    const steps = fc.array(fc.record({ gpu: fc.integer({ min: 0, max: 3 }), milli: fc.integer({ min: 1, max: 400 }), cpuMillis: fc.integer({ min: 0, max: 16_000 }) }), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(steps, (changes) => {
        const cluster = new ClusterState();
        const node = cluster.upsertNode(gpuNodeSpec('g', { capacity: { gpus: 4, cpuMillis: 64_000 } }));
        const probe = prepareJob(gpuJob({ gpuMilli: 200, cpuMillis: 2000 }), policy);
        for (const change of changes) {
          if (node.gpuUsedMilli[change.gpu] + change.milli > 1000 || node.freeCpuMillis < change.cpuMillis) continue;
          expect(fragmentationGradient.score(probe, node)).toBe(fromScratch(probe, node));
          use(cluster, node, [{ index: change.gpu, milli: change.milli }], change.cpuMillis);
          expect(fragmentationGradient.score(probe, node)).toBe(fromScratch(probe, node));
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('gpuFragmentationOf', () => {
  test('sums the fragments, free GPUs and capacity of the GPU nodes', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('cpu'));
    const a = cluster.upsertNode(gpuNodeSpec('a', { capacity: { gpus: 2 } }));
    cluster.upsertNode(gpuNodeSpec('b', { capacity: { gpus: 2 } }));
    use(cluster, a, [{ index: 0, milli: 700 }]);
    expect(gpuFragmentationOf(cluster.nodes(), [WHOLE])).toEqual({ fragmentMilli: 300, freeMilli: 3300, capacityMilli: 4000 });
  });
});

describe('ResourceAlignment', () => {
  test('a CPU-hungry GPU task prefers the server with cores to spare, a light one the server short of cores', () => {
    const cluster = new ClusterState();
    const coresLeft = cluster.upsertNode(gpuNodeSpec('cores-left', { capacity: { gpus: 2, cpuMillis: 32_000, memBytes: 256 * GiB } }));
    const coresTaken = cluster.upsertNode(gpuNodeSpec('cores-taken', { capacity: { gpus: 2, cpuMillis: 32_000, memBytes: 256 * GiB } }));
    use(cluster, coresTaken, [{ index: 0, milli: 1 }], 24_000);
    use(cluster, coresLeft, [{ index: 0, milli: 1 }]);
    const heavy = prepareJob(gpuJob({ gpus: 1, cpuMillis: 16_000, memBytes: 0 }), DEFAULT_POLICY);
    const light = prepareJob(gpuJob({ gpus: 1, cpuMillis: 1000, memBytes: 0 }), DEFAULT_POLICY);
    expect(resourceAlignment.score(heavy, coresLeft)).toBeGreaterThan(resourceAlignment.score(heavy, coresTaken));
    expect(resourceAlignment.score(light, coresTaken)).toBeGreaterThan(resourceAlignment.score(light, coresLeft));
  });

  test('a request in the proportions of what is free scores 100; a full node 0', () => {
    const cluster = new ClusterState();
    const node = cluster.upsertNode(nodeSpec('n', { capacity: { cpuMillis: 16_000, memBytes: 64 * GiB } }));
    expect(resourceAlignment.score(prepareJob(job({ resources: { cpuMillis: 4000, memBytes: 16 * GiB } }), DEFAULT_POLICY), node)).toBe(100);
    cluster.reserve({ jobId: 'all', tenant: 't', pool: 'general', dataClass: 'public', exclusive: false, tasks: [{ taskIndex: 0, nodeId: 'n', cpuMillis: 16_000, memBytes: 64 * GiB, gpuIndices: [], gpuMilliEach: 0, extended: {} }] });
    expect(resourceAlignment.score(prepareJob(job(), DEFAULT_POLICY), node)).toBe(0);
  });
});
