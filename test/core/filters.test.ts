import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, prepareJob, type FilterPlugin, type SchedJob } from '../../src/core';
import { fitsResources, gpuModel, nodeAffinity, nodeSelector, nodeSize, nodeState, poolMatch, securityLevel, taintToleration, tenantIsolation } from '../../src/core/filters';
import type { NodeSpec, NodeState } from '../../src/protocol';
import { GiB, gpuNodeSpec, job, nodeSpec } from './fixtures';

interface Case {
  name: string;
  node: NodeSpec;
  job: SchedJob;
  state?: NodeState;
  /** Resources already taken on the node, as one placement of this job. */
  taken?: SchedJob;
  want: string | null;
}

function verdict(filter: FilterPlugin, c: Case): string | null {
  const cluster = new ClusterState();
  const node = cluster.upsertNode(c.node);
  if (c.state) cluster.setNodeState(node.id, c.state);
  if (c.taken) {
    const p = prepareJob(c.taken, DEFAULT_POLICY);
    const out: Parameters<typeof node.planTasks>[3] = [];
    node.planTasks(p.task, 1, 0, out);
    cluster.reserve({ jobId: c.taken.id, tenant: c.taken.tenant, pool: c.node.pool, dataClass: c.taken.dataClass, exclusive: p.task.exclusive, tasks: out });
  }
  return filter.filter(prepareJob(c.job, DEFAULT_POLICY), node);
}

const table: [FilterPlugin, Case[]][] = [
  [
    nodeState,
    [
      { name: 'ready passes', node: nodeSpec('n'), job: job(), want: null },
      { name: 'cordoned is rejected', node: nodeSpec('n'), job: job(), state: 'cordoned', want: 'node-cordoned' },
      { name: 'suspect is rejected', node: nodeSpec('n'), job: job(), state: 'suspect', want: 'node-suspect' },
      { name: 'down is rejected', node: nodeSpec('n'), job: job(), state: 'down', want: 'node-down' },
    ],
  ],
  [
    poolMatch,
    [
      { name: 'same pool passes', node: nodeSpec('n'), job: job(), want: null },
      { name: 'other pool is rejected', node: gpuNodeSpec('g'), job: job(), want: 'pool-mismatch' },
    ],
  ],
  [
    gpuModel,
    [
      { name: 'cpu job ignores GPUs', node: nodeSpec('n'), job: job(), want: null },
      { name: 'GPU job on a node without GPUs', node: nodeSpec('n', { pool: 'intelligent' }), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1 } }), want: 'no-gpus' },
      { name: 'any model accepted', node: gpuNodeSpec('g'), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1 } }), want: null },
      { name: 'wanted model present', node: gpuNodeSpec('g', { gpuModel: 'H20' }), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1 }, constraints: { gpuModels: ['A800', 'H20'] } }), want: null },
      { name: 'wrong model', node: gpuNodeSpec('g', { gpuModel: '910B' }), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1 }, constraints: { gpuModels: ['H20'] } }), want: 'gpu-model-mismatch' },
      { name: 'share asks for a model too', node: gpuNodeSpec('g'), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpuMilli: 300 }, constraints: { gpuModels: ['H20'] } }), want: 'gpu-model-mismatch' },
      { name: 'GPU memory exactly enough', node: gpuNodeSpec('g'), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1, gpuMemBytes: 80 * GiB } }), want: null },
      { name: 'GPU memory one byte short', node: gpuNodeSpec('g'), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1, gpuMemBytes: 80 * GiB + 1 } }), want: 'gpu-memory-too-small' },
    ],
  ],
  [
    nodeSelector,
    [
      { name: 'no selector passes', node: nodeSpec('n'), job: job(), want: null },
      { name: 'matching label', node: nodeSpec('n', { labels: { disk: 'nvme' } }), job: job({ constraints: { nodeSelector: { disk: 'nvme' } } }), want: null },
      { name: 'other value', node: nodeSpec('n', { labels: { disk: 'sata' } }), job: job({ constraints: { nodeSelector: { disk: 'nvme' } } }), want: 'node-selector-mismatch' },
      { name: 'missing label', node: nodeSpec('n'), job: job({ constraints: { nodeSelector: { disk: 'nvme' } } }), want: 'node-selector-mismatch' },
      { name: 'zone is a label', node: nodeSpec('n', { zone: 'qy-a' }), job: job({ constraints: { nodeSelector: { 'topology.kubernetes.io/zone': 'qy-a' } } }), want: null },
    ],
  ],
  [
    nodeAffinity,
    [
      { name: 'In matches', node: nodeSpec('n', { labels: { tier: 'gold' } }), job: job({ constraints: { affinity: [{ key: 'tier', operator: 'In', values: ['gold', 'silver'] }] } }), want: null },
      { name: 'In misses', node: nodeSpec('n', { labels: { tier: 'bronze' } }), job: job({ constraints: { affinity: [{ key: 'tier', operator: 'In', values: ['gold'] }] } }), want: 'affinity-mismatch' },
      { name: 'NotIn on missing label matches', node: nodeSpec('n'), job: job({ constraints: { affinity: [{ key: 'tier', operator: 'NotIn', values: ['gold'] }] } }), want: null },
      { name: 'Exists misses', node: nodeSpec('n'), job: job({ constraints: { affinity: [{ key: 'ssd', operator: 'Exists' }] } }), want: 'affinity-mismatch' },
      { name: 'DoesNotExist matches', node: nodeSpec('n'), job: job({ constraints: { affinity: [{ key: 'ssd', operator: 'DoesNotExist' }] } }), want: null },
      { name: 'Gt matches', node: nodeSpec('n', { labels: { gen: '5' } }), job: job({ constraints: { affinity: [{ key: 'gen', operator: 'Gt', values: ['4'] }] } }), want: null },
      { name: 'Gt equal misses', node: nodeSpec('n', { labels: { gen: '4' } }), job: job({ constraints: { affinity: [{ key: 'gen', operator: 'Gt', values: ['4'] }] } }), want: 'affinity-mismatch' },
      { name: 'Lt on non-number misses', node: nodeSpec('n', { labels: { gen: 'x' } }), job: job({ constraints: { affinity: [{ key: 'gen', operator: 'Lt', values: ['4'] }] } }), want: 'affinity-mismatch' },
      { name: 'anti-affinity excludes a match', node: nodeSpec('n', { labels: { noisy: 'yes' } }), job: job({ constraints: { antiAffinity: [{ key: 'noisy', operator: 'Exists' }] } }), want: 'anti-affinity-match' },
      { name: 'anti-affinity lets others pass', node: nodeSpec('n'), job: job({ constraints: { antiAffinity: [{ key: 'noisy', operator: 'Exists' }] } }), want: null },
    ],
  ],
  [
    taintToleration,
    [
      { name: 'untainted passes', node: nodeSpec('n'), job: job(), want: null },
      { name: 'NoSchedule repels', node: nodeSpec('n', { taints: [{ key: 'vendor', value: 'huawei', effect: 'NoSchedule' }] }), job: job(), want: 'untolerated-taint' },
      { name: 'PreferNoSchedule does not repel', node: nodeSpec('n', { taints: [{ key: 'old', value: '', effect: 'PreferNoSchedule' }] }), job: job(), want: null },
      { name: 'Equal toleration', node: nodeSpec('n', { taints: [{ key: 'vendor', value: 'huawei', effect: 'NoSchedule' }] }), job: job({ constraints: { tolerations: [{ key: 'vendor', operator: 'Equal', value: 'huawei' }] } }), want: null },
      { name: 'Equal with another value', node: nodeSpec('n', { taints: [{ key: 'vendor', value: 'huawei', effect: 'NoSchedule' }] }), job: job({ constraints: { tolerations: [{ key: 'vendor', operator: 'Equal', value: 'nvidia' }] } }), want: 'untolerated-taint' },
      { name: 'Exists on the key', node: nodeSpec('n', { taints: [{ key: 'vendor', value: 'huawei', effect: 'NoSchedule' }] }), job: job({ constraints: { tolerations: [{ key: 'vendor', operator: 'Exists' }] } }), want: null },
      { name: 'empty key with Exists tolerates all', node: nodeSpec('n', { taints: [{ key: 'a', value: 'b', effect: 'NoSchedule' }] }), job: job({ constraints: { tolerations: [{ operator: 'Exists' }] } }), want: null },
      { name: 'effect must match when given', node: nodeSpec('n', { taints: [{ key: 'a', value: 'b', effect: 'NoSchedule' }] }), job: job({ constraints: { tolerations: [{ key: 'a', operator: 'Exists', effect: 'PreferNoSchedule' }] } }), want: 'untolerated-taint' },
    ],
  ],
  [
    securityLevel,
    [
      { name: 'public job on internal node', node: nodeSpec('n', { securityLevel: 'internal' }), job: job({ dataClass: 'public' }), want: null },
      { name: 'same level', node: nodeSpec('n', { securityLevel: 'sensitive' }), job: job({ dataClass: 'sensitive' }), want: null },
      { name: 'restricted job on sensitive node', node: nodeSpec('n', { securityLevel: 'sensitive' }), job: job({ dataClass: 'restricted' }), want: 'security-level-too-low' },
    ],
  ],
  [
    nodeSize,
    [
      { name: 'fits when empty', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 16_000, memBytes: 64 * GiB } }), want: null },
      { name: 'one milli-core too many', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 16_001, memBytes: GiB } }), want: 'node-too-small' },
      { name: 'more GPUs than the node has', node: gpuNodeSpec('g'), job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 9 } }), want: 'node-too-small' },
      { name: 'missing extended resource', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 1000, memBytes: 0, extended: { 'rdma/hca': 1 } } }), want: 'node-too-small' },
      { name: 'extended resource present', node: nodeSpec('n', { capacity: { cpuMillis: 16_000, memBytes: 64 * GiB, extended: { 'rdma/hca': 2 } } }), job: job({ resources: { cpuMillis: 1000, memBytes: 0, extended: { 'rdma/hca': 2 } } }), want: null },
    ],
  ],
  [
    fitsResources,
    [
      { name: 'exact fit is accepted', node: nodeSpec('n'), taken: job({ resources: { cpuMillis: 12_000, memBytes: GiB } }), job: job({ resources: { cpuMillis: 4000, memBytes: GiB } }), want: null },
      { name: 'one milli short is rejected', node: nodeSpec('n'), taken: job({ resources: { cpuMillis: 12_001, memBytes: GiB } }), job: job({ resources: { cpuMillis: 4000, memBytes: GiB } }), want: 'insufficient-cpu' },
      { name: 'memory short', node: nodeSpec('n'), taken: job({ resources: { cpuMillis: 1000, memBytes: 60 * GiB } }), job: job({ resources: { cpuMillis: 1000, memBytes: 8 * GiB } }), want: 'insufficient-memory' },
      {
        name: 'GPUs short',
        node: gpuNodeSpec('g'),
        taken: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 7 } }),
        job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 2 } }),
        want: 'insufficient-gpus',
      },
      {
        name: 'a share needs one GPU with room, not room in total',
        node: gpuNodeSpec('g', { capacity: { cpuMillis: 128_000, memBytes: 1024 * GiB, gpus: 1, gpuMemBytes: 80 * GiB } }),
        taken: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpuMilli: 600 } }),
        job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpuMilli: 500 } }),
        want: 'insufficient-gpu-share',
      },
      {
        name: 'a share fits beside another',
        node: gpuNodeSpec('g', { capacity: { cpuMillis: 128_000, memBytes: 1024 * GiB, gpus: 1, gpuMemBytes: 80 * GiB } }),
        taken: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpuMilli: 600 } }),
        job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpuMilli: 400 } }),
        want: null,
      },
      { name: 'exclusive needs an idle node', node: nodeSpec('n', { pool: 'super' }), taken: job({ pool: 'super' }), job: job({ pool: 'super' }), want: 'node-not-idle' },
    ],
  ],
  [
    tenantIsolation,
    [
      { name: 'an empty node takes a restricted job', node: nodeSpec('n', { securityLevel: 'restricted' }), job: job({ tenant: 'a', dataClass: 'restricted' }), want: null },
      { name: 'a restricted job shares with its own tenant', node: nodeSpec('n', { securityLevel: 'restricted' }), taken: job({ tenant: 'a' }), job: job({ tenant: 'a', dataClass: 'restricted' }), want: null },
      { name: "a restricted job avoids another tenant's work", node: nodeSpec('n', { securityLevel: 'restricted' }), taken: job({ tenant: 'b' }), job: job({ tenant: 'a', dataClass: 'restricted' }), want: 'restricted-isolation' },
      { name: "any job avoids another tenant's restricted work", node: nodeSpec('n', { securityLevel: 'restricted' }), taken: job({ tenant: 'b', dataClass: 'restricted' }), job: job({ tenant: 'a' }), want: 'restricted-isolation' },
      { name: 'ordinary jobs of different tenants share', node: nodeSpec('n'), taken: job({ tenant: 'b' }), job: job({ tenant: 'a' }), want: null },
    ],
  ],
];

for (const [filter, cases] of table) {
  describe(filter.name, () => {
    for (const c of cases) test(c.name, () => expect(verdict(filter, c)).toBe(c.want));
  });
}
