import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, jobFits, placeJob, placeJobNaive, prepareJob, type Placement, type PlacementResult, type SchedJob } from '../../src/core';
import { GPU_MILLI_PER_GPU, NODE_STATES, POOLS, type NodeSpec } from '../../src/protocol';
import { GiB, job, nodeSpec } from './fixtures';

const nodeArb = fc.record({
  pool: fc.constantFrom(...POOLS),
  cores: fc.integer({ min: 1, max: 16 }),
  extraMillis: fc.constantFrom(0, 0, 500),
  memGiB: fc.integer({ min: 1, max: 32 }),
  gpus: fc.constantFrom(0, 0, 1, 2, 4, 8),
  model: fc.constantFrom('A800', 'H20'),
  tier: fc.constantFrom(undefined, 'gold', 'silver'),
  tainted: fc.boolean(),
  zone: fc.constantFrom('z1', 'z2'),
  rack: fc.constantFrom('r1', 'r2', 'r3'),
  level: fc.constantFrom('public', 'internal', 'sensitive', 'restricted' as const),
  hca: fc.constantFrom(0, 0, 2),
});

const jobArb = fc.record({
  pool: fc.constantFrom(...POOLS),
  cpuMillis: fc.oneof(fc.integer({ min: 1, max: 8 }).map((c) => c * 1000), fc.integer({ min: 1, max: 9000 })),
  memGiB: fc.integer({ min: 0, max: 12 }),
  gpuKind: fc.constantFrom('none', 'none', 'whole', 'share'),
  gpus: fc.integer({ min: 1, max: 4 }),
  gpuMilli: fc.integer({ min: 1, max: 999 }),
  tasks: fc.constantFrom(1, 1, 1, 2, 3, 5),
  model: fc.constantFrom(undefined, 'A800', 'H20', 'B200'),
  tier: fc.constantFrom(undefined, 'gold'),
  tolerates: fc.boolean(),
  dataClass: fc.constantFrom('public', 'internal', 'sensitive', 'restricted' as const),
  hca: fc.constantFrom(0, 0, 1),
  tenant: fc.constantFrom('t1', 't2', 't3'),
});

const opArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('place' as const), job: jobArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('state' as const), pick: fc.nat(), state: fc.constantFrom(...NODE_STATES) }) },
);

type NodeInput = typeof nodeArb extends fc.Arbitrary<infer T> ? T : never;
type JobInput = typeof jobArb extends fc.Arbitrary<infer T> ? T : never;
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

function toNodeSpec(n: NodeInput, i: number): NodeSpec {
  const gpus = n.pool === 'intelligent' ? n.gpus : 0;
  return nodeSpec(`n${i}`, {
    pool: n.pool,
    zone: n.zone,
    rack: n.rack,
    labels: n.tier ? { tier: n.tier } : {},
    taints: n.tainted ? [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }] : [],
    securityLevel: n.level,
    gpuModel: gpus > 0 ? n.model : undefined,
    capacity: { cpuMillis: n.cores * 1000 + n.extraMillis, memBytes: n.memGiB * GiB, gpus, gpuMemBytes: gpus > 0 ? 80 * GiB : 0, extended: n.hca ? { 'rdma/hca': n.hca } : {} },
  });
}

function toJob(j: JobInput, id: string): SchedJob {
  const gpu = j.pool === 'intelligent' ? j.gpuKind : 'none';
  return job({
    id,
    tenant: j.tenant,
    pool: j.pool,
    tasks: j.tasks,
    resources: {
      cpuMillis: j.cpuMillis,
      memBytes: j.memGiB * GiB,
      gpus: gpu === 'whole' ? j.gpus : 0,
      gpuMilli: gpu === 'share' ? j.gpuMilli : 0,
      extended: j.hca ? { 'rdma/hca': j.hca } : {},
    },
    dataClass: j.dataClass,
    constraints: {
      gpuModels: j.model && gpu !== 'none' ? [j.model] : [],
      nodeSelector: j.tier ? { tier: j.tier } : {},
      tolerations: j.tolerates ? [{ key: 'dedicated', operator: 'Exists' }] : [],
    },
  });
}

/** Everything allocated on every node, to compare states. */
function snapshot(cluster: ClusterState) {
  return cluster.nodes().map((n) => [n.id, n.state, n.requestedCpuMillis, n.requestedMemBytes, [...n.gpuUsedMilli].join(','), n.taskCount, [...n.requestedExtended].join(',')].join('|'));
}

function assertNotOverAllocated(cluster: ClusterState): void {
  for (const n of cluster.nodes()) {
    expect(n.requestedCpuMillis).toBeGreaterThanOrEqual(0);
    expect(n.requestedCpuMillis).toBeLessThanOrEqual(n.allocatable.cpuMillis);
    expect(n.requestedMemBytes).toBeLessThanOrEqual(n.allocatable.memBytes);
    for (const used of n.gpuUsedMilli) expect(used).toBeLessThanOrEqual(GPU_MILLI_PER_GPU);
    for (const [name, amount] of n.requestedExtended) expect(amount).toBeLessThanOrEqual(n.allocatable.extended[name] ?? 0);
  }
}

function assertWellFormed(result: PlacementResult, j: SchedJob): void {
  if (!result.ok) return;
  const p = result.placement;
  expect(p.tasks).toHaveLength(j.tasks);
  expect(p.tasks.map((t) => t.taskIndex).sort((a, b) => a - b)).toEqual([...Array(j.tasks).keys()]);
  for (const t of p.tasks) {
    if (j.task.gpuMilli > 0) expect(t.gpuIndices).toHaveLength(1);
    if (j.task.gpus > 0 && !p.exclusive) expect(t.gpuIndices).toHaveLength(j.task.gpus);
  }
}

/** Runs a scenario; returns the placements in order, checking the invariants after every step. */
function run(nodes: NodeSpec[], ops: Op[]): (Placement | string)[] {
  const cluster = new ClusterState();
  for (const n of nodes) cluster.upsertNode(n);
  const placed: string[] = [];
  const log: (Placement | string)[] = [];
  ops.forEach((op, i) => {
    if (op.kind === 'place') {
      const j = toJob(op.job, `job${i}`);
      const before = snapshot(cluster);
      const indexed = placeJob(cluster, j, DEFAULT_POLICY);
      const naive = placeJobNaive(cluster, j, DEFAULT_POLICY);
      // Deciding changes nothing, and both paths agree on whether (and why not) the job fits.
      expect(snapshot(cluster)).toEqual(before);
      expect(indexed.ok).toBe(naive.ok);
      // The look-ahead probe gives the same answer without building a placement.
      expect(jobFits(cluster, prepareJob(j, DEFAULT_POLICY))).toBe(indexed.ok);
      if (!indexed.ok && !naive.ok) {
        expect(indexed.never).toBe(naive.never);
        expect(indexed.reasons).toEqual(naive.reasons);
        const counted = Object.values(indexed.reasons).reduce((a, b) => a + b, 0);
        if (!indexed.never) expect(counted).toBe(cluster.nodesOf(j.pool).length);
      }
      assertWellFormed(indexed, j);
      assertWellFormed(naive, j);
      if (indexed.ok) {
        // Reserve then release restores the state exactly; then keep it reserved.
        cluster.reserve(indexed.placement);
        cluster.release(j.id);
        expect(snapshot(cluster)).toEqual(before);
        cluster.reserve(indexed.placement);
        placed.push(j.id);
        log.push(indexed.placement);
      } else log.push(`refused ${j.id}`);
    } else if (op.kind === 'release' && placed.length > 0) {
      const [jobId] = placed.splice(op.pick % placed.length, 1);
      expect(cluster.release(jobId)).toBeDefined();
    } else if (op.kind === 'state' && nodes.length > 0) {
      cluster.setNodeState(nodes[op.pick % nodes.length].id, op.state);
    }
    assertNotOverAllocated(cluster);
  });
  // Releasing everything leaves every node empty.
  for (const jobId of placed) cluster.release(jobId);
  for (const n of cluster.nodes()) expect([n.requestedCpuMillis, n.requestedMemBytes, n.usedGpuMilli(), n.taskCount, n.requestedExtended.size]).toEqual([0, 0, 0, 0, 0]);
  return log;
}

describe('placement core invariants (property tests)', () => {
  const scenario = fc.tuple(fc.array(nodeArb, { minLength: 1, maxLength: 14 }), fc.array(opArb, { minLength: 1, maxLength: 60 }));

  test('never over-allocates, gangs are all or nothing, reserve+release restores, indexed, naive and the fit probe agree', () => {
    fc.assert(
      fc.property(scenario, ([nodes, ops]) => {
        run(nodes.map(toNodeSpec), ops);
      }),
      { numRuns: 400 },
    );
  });

  test('the same state and jobs give the same placements', () => {
    fc.assert(
      fc.property(scenario, ([nodes, ops]) => {
        const specs = nodes.map(toNodeSpec);
        expect(run(specs, ops)).toEqual(run(specs, ops));
      }),
      { numRuns: 100 },
    );
  });
});
