import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, placeJob, type Placement } from '../../src/core';
import { GiB, gpuNodeSpec, job, nodeSpec } from './fixtures';

function snapshot(cluster: ClusterState) {
  return cluster.nodes().map((n) => ({ id: n.id, cpu: n.requestedCpuMillis, mem: n.requestedMemBytes, gpu: [...n.gpuUsedMilli], tasks: n.taskCount, ext: [...n.requestedExtended] }));
}

describe('ClusterState', () => {
  test('release gives back exactly what reserve took', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(gpuNodeSpec('g', { capacity: { cpuMillis: 64_000, memBytes: 256 * GiB, gpus: 4, gpuMemBytes: 80 * GiB, extended: { 'rdma/hca': 2 } } }));
    const before = snapshot(cluster);
    const result = placeJob(cluster, job({ pool: 'intelligent', resources: { cpuMillis: 3000, memBytes: 5 * GiB, gpus: 2, extended: { 'rdma/hca': 1 } } }), DEFAULT_POLICY);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    cluster.reserve(result.placement);
    expect(snapshot(cluster)).not.toEqual(before);
    expect(cluster.release(result.placement.jobId)).toEqual(result.placement);
    expect(snapshot(cluster)).toEqual(before);
    expect(cluster.release(result.placement.jobId)).toBeUndefined();
  });

  test('GPUs are added at any time and removed from the end only while free; tasks keep their GPU indices', () => {
    const cluster = new ClusterState();
    const spec = (gpus: number) => gpuNodeSpec('g', { capacity: { cpuMillis: 64_000, memBytes: 256 * GiB, gpus: 8, gpuMemBytes: 80 * GiB, extended: {} }, allocatable: { cpuMillis: 64_000, memBytes: 256 * GiB, gpus, gpuMemBytes: 80 * GiB, extended: {} } });
    cluster.upsertNode(spec(4));
    const result = placeJob(cluster, job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: GiB, gpus: 2 } }), DEFAULT_POLICY);
    if (!result.ok) throw new Error('no placement');
    cluster.reserve(result.placement);
    const held = result.placement.tasks[0].gpuIndices;
    expect(Math.max(...held)).toBeLessThan(2);
    cluster.upsertNode(spec(2)); // another scheduler's pods took the two free ones
    expect([...cluster.getNode('g')!.gpuUsedMilli]).toEqual([1000, 1000]);
    const before = snapshot(cluster);
    expect(() => cluster.upsertNode(spec(1))).toThrow(/cannot remove GPUs 1..1 while they are allocated/);
    expect(snapshot(cluster)).toEqual(before);
    expect(cluster.getNode('g')!.allocatable.gpus).toBe(2);
    cluster.upsertNode(spec(8));
    expect(cluster.getNode('g')!.wholeFreeGpus()).toBe(6);
    expect(cluster.release(result.placement.jobId)).toEqual(result.placement);
    expect(cluster.getNode('g')!.wholeFreeGpus()).toBe(8);
  });

  test('a placement that no longer fits is refused whole, changing nothing', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('a'));
    cluster.upsertNode(nodeSpec('b'));
    const placement: Placement = {
      jobId: 'x',
      tenant: 't',
      pool: 'general',
      dataClass: 'public',
      exclusive: false,
      tasks: [
        { taskIndex: 0, nodeId: 'a', cpuMillis: 1000, memBytes: 0, gpuIndices: [], gpuMilliEach: 0, extended: {} },
        { taskIndex: 1, nodeId: 'b', cpuMillis: 17_000, memBytes: 0, gpuIndices: [], gpuMilliEach: 0, extended: {} },
      ],
    };
    const before = snapshot(cluster);
    expect(() => cluster.reserve(placement)).toThrow(/cpu over-allocated on b/);
    expect(snapshot(cluster)).toEqual(before);
    expect(cluster.placementOf('x')).toBeUndefined();
  });

  test('reserve refuses a job placed twice, an unknown node and a GPU share over 1000', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(gpuNodeSpec('g'));
    const task = { taskIndex: 0, nodeId: 'g', cpuMillis: 1000, memBytes: 0, gpuIndices: [0], gpuMilliEach: 600, extended: {} };
    const base = { tenant: 't', pool: 'intelligent' as const, dataClass: 'public' as const, exclusive: false };
    cluster.reserve({ ...base, jobId: 'a', tasks: [task] });
    expect(() => cluster.reserve({ ...base, jobId: 'a', tasks: [task] })).toThrow(/already placed/);
    expect(() => cluster.reserve({ ...base, jobId: 'b', tasks: [task] })).toThrow(/GPU 0 over-allocated/);
    expect(() => cluster.reserve({ ...base, jobId: 'c', tasks: [{ ...task, nodeId: 'nope' }] })).toThrow(/not registered/);
    expect(() => cluster.reserve({ ...base, jobId: 'd', tasks: [{ ...task, gpuIndices: [8] }] })).toThrow(/does not exist/);
  });

  test('cordoned and down nodes get no new work but keep what they run', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('a'));
    const first = placeJob(cluster, job(), DEFAULT_POLICY);
    if (!first.ok) throw new Error('expected a placement');
    cluster.reserve(first.placement);
    cluster.setNodeState('a', 'cordoned');
    expect(placeJob(cluster, job(), DEFAULT_POLICY).ok).toBe(false);
    expect(cluster.getNode('a')!.taskCount).toBe(1);
    cluster.setNodeState('a', 'ready');
    expect(placeJob(cluster, job(), DEFAULT_POLICY).ok).toBe(true);
  });

  test('re-registering a node with new labels moves it to the right group and keeps its allocations', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('a'));
    const first = placeJob(cluster, job({ resources: { cpuMillis: 4000, memBytes: GiB } }), DEFAULT_POLICY);
    if (!first.ok) throw new Error('expected a placement');
    cluster.reserve(first.placement);
    cluster.upsertNode(nodeSpec('a', { labels: { disk: 'nvme' } }));
    expect(cluster.getNode('a')!.requestedCpuMillis).toBe(4000);
    const wantsNvme = placeJob(cluster, job({ resources: { cpuMillis: 12_000, memBytes: GiB }, constraints: { nodeSelector: { disk: 'nvme' } } }), DEFAULT_POLICY);
    expect(wantsNvme.ok).toBe(true);
    const tooBig = placeJob(cluster, job({ resources: { cpuMillis: 12_001, memBytes: GiB } }), DEFAULT_POLICY);
    expect(tooBig.ok).toBe(false);
  });

  test('a node with tasks cannot be removed; an idle one can', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('a'));
    cluster.upsertNode(nodeSpec('b'));
    const r = placeJob(cluster, job({ resources: { cpuMillis: 16_000, memBytes: GiB } }), DEFAULT_POLICY);
    if (!r.ok) throw new Error('expected a placement');
    cluster.reserve(r.placement);
    const busy = r.placement.tasks[0].nodeId;
    const idle = busy === 'a' ? 'b' : 'a';
    expect(() => cluster.removeNode(busy)).toThrow(/still has 1 tasks/);
    cluster.removeNode(idle);
    expect(cluster.nodeCount).toBe(1);
    expect(placeJob(cluster, job(), DEFAULT_POLICY).ok).toBe(false);
  });

  test('pool summary adds up allocatable and allocated', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(gpuNodeSpec('g1'));
    cluster.upsertNode(gpuNodeSpec('g2'));
    const r = placeJob(cluster, job({ pool: 'intelligent', resources: { cpuMillis: 2000, memBytes: GiB, gpus: 3 } }), DEFAULT_POLICY);
    if (!r.ok) throw new Error('expected a placement');
    cluster.reserve(r.placement);
    const s = cluster.poolSummary('intelligent');
    expect(s.allocatable).toEqual({ cpuMillis: 256_000, memBytes: 2048 * GiB, gpus: 16 });
    expect(s.allocated).toEqual({ cpuMillis: 2000, memBytes: GiB, gpuMilli: 3000 });
    expect(s.partlyUsedGpuNodes).toBe(1);
    expect(s.nodes.ready).toBe(2);
  });
});
