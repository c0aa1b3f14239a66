import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, placeJob, withPoolPolicy, type Placement } from '../../src/core';
import type { NodeSpec } from '../../src/protocol';
import { GiB, gpuNodeSpec, job, nodeSpec } from './fixtures';

function clusterOf(specs: NodeSpec[]): ClusterState {
  const cluster = new ClusterState();
  for (const s of specs) cluster.upsertNode(s);
  return cluster;
}

const hpc = (id: string, rack: string) => nodeSpec(id, { pool: 'super', rack });
const racksOf = (cluster: ClusterState, p: Placement) => new Set(p.tasks.map((t) => cluster.getNode(t.nodeId)!.spec.rack));
const mpi = (tasks: number) => job({ pool: 'super', tasks, resources: { cpuMillis: 16_000, memBytes: 8 * GiB } });

describe('gang placement', () => {
  const cases = [
    { name: 'fits in one rack when a rack has room', racks: { r1: 2, r2: 4 }, tasks: 3, wantRacks: 1 },
    { name: 'spills over the fewest racks', racks: { r1: 2, r2: 3, r3: 1 }, tasks: 5, wantRacks: 2 },
    { name: 'uses every rack when it must', racks: { r1: 2, r2: 2, r3: 2 }, tasks: 6, wantRacks: 3 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const specs = Object.entries(c.racks).flatMap(([rack, n]) => Array.from({ length: n }, (_, i) => hpc(`${rack}-n${i}`, rack)));
      const cluster = clusterOf(specs);
      const result = placeJob(cluster, mpi(c.tasks), DEFAULT_POLICY);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.placement.tasks).toHaveLength(c.tasks);
      expect(new Set(result.placement.tasks.map((t) => t.nodeId)).size).toBe(c.tasks);
      expect(racksOf(cluster, result.placement).size).toBe(c.wantRacks);
      expect(result.placement.tasks.map((t) => t.taskIndex)).toEqual([...Array(c.tasks).keys()]);
    });
  }

  test('all or nothing: a gang one node too large places nothing and reserves nothing', () => {
    const cluster = clusterOf([hpc('a', 'r1'), hpc('b', 'r1'), hpc('c', 'r2')]);
    cluster.setNodeState('c', 'down');
    const result = placeJob(cluster, mpi(3), DEFAULT_POLICY);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.never).toBe(false);
    expect(result.tasksFitting).toBe(2);
    expect(result.reasons).toEqual({ 'gang-too-large': 2, 'node-down': 1 });
    expect(cluster.placementOf(mpi(3).id)).toBeUndefined();
    expect(cluster.nodes().every((n) => n.isIdle)).toBe(true);
  });

  test('a gang larger than the whole pool never fits', () => {
    const cluster = clusterOf([hpc('a', 'r1'), hpc('b', 'r1')]);
    const result = placeJob(cluster, mpi(3), DEFAULT_POLICY);
    expect(result.ok === false && result.never).toBe(true);
    expect(result.ok === false && result.tasksFitting).toBe(2);
  });

  test('several tasks of a GPU gang share a server when it has room', () => {
    const cluster = clusterOf([gpuNodeSpec('g1'), gpuNodeSpec('g2')]);
    const result = placeJob(cluster, job({ pool: 'intelligent', tasks: 4, resources: { cpuMillis: 8000, memBytes: 32 * GiB, gpus: 2 } }), DEFAULT_POLICY);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(new Set(result.placement.tasks.map((t) => t.nodeId)).size).toBe(1);
    expect(result.placement.tasks.flatMap((t) => t.gpuIndices)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('a bounded rack search settles for the fewest racks among the nodes it has seen', () => {
    const policy = withPoolPolicy(DEFAULT_POLICY, { super: { gangSearchNodes: 2 } });
    // Scan order is registration order here: r1, r2 then r3, which alone could hold the gang.
    const cluster = clusterOf([hpc('a', 'r1'), hpc('b', 'r2'), hpc('c', 'r3'), hpc('d', 'r3')]);
    const bounded = placeJob(cluster, mpi(2), policy);
    const thorough = placeJob(cluster, mpi(2), DEFAULT_POLICY);
    expect(bounded.ok && racksOf(cluster, bounded.placement).size).toBe(2);
    expect(thorough.ok && [...racksOf(cluster, thorough.placement)]).toEqual(['r3']);
  });
});
