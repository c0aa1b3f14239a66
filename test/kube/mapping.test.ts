import { describe, expect, test } from 'vitest';
import { kubeNamespaceSchema, kubeNodeSchema, kubePodSchema, type KubePod } from '../../src/kube/kube-types';
import { kubeNodeNameOf, nodeIdOf, nodeSpecOf, type NodeLabelKeys } from '../../src/kube/node-mapping';
import { groupPods, jobOfUnit, type PodMappingKeys } from '../../src/kube/pod-mapping';
import { emptyResources, podRequests } from '../../src/kube/requests';

const GiB = 1024 ** 3;
const nodeKeys: NodeLabelKeys = { poolLabel: 'qingyang.cn/pool', gpuModelLabel: 'qingyang.cn/gpu-model', rackLabels: ['topology.kubernetes.io/rack', 'qingyang.cn/rack'], zoneLabel: 'topology.kubernetes.io/zone', securityLabel: 'qingyang.cn/security-level' };
const podKeys: PodMappingKeys = { schedulerName: 'qingyang-scheduler', poolLabel: 'qingyang.cn/pool', tenantLabel: 'qingyang.cn/tenant', priorityAnnotation: 'qingyang.cn/priority-class', priorityClasses: ['urgent', 'normal', 'batch', 'best-effort'] };

function kNode(name: string, labels: Record<string, string>, allocatable: Record<string, string>) {
  return kubeNodeSchema.parse({ metadata: { name, labels }, spec: {}, status: { allocatable, conditions: [{ type: 'Ready', status: 'True' }] } });
}

let uid = 0;
function kPod(name: string, spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubePod {
  return kubePodSchema.parse({
    metadata: { name, namespace: 'team-a', uid: `u-${++uid}`, ...meta },
    spec: { schedulerName: 'qingyang-scheduler', containers: [{ name: 'main', resources: { requests: { cpu: '1', memory: '1Gi' } } }], ...spec },
    status: { phase: 'Pending' },
  });
}
const ns = kubeNamespaceSchema.parse({ metadata: { name: 'team-a', labels: { 'qingyang.cn/tenant': 'beijing', 'qingyang.cn/pool': 'general' } } });

describe('node → scheduler node', () => {
  test('labels give pool, GPU model (with the NVIDIA fallback), rack, zone and security level; allocatable becomes capacity', () => {
    const node = kNode('gpu-7.dc1', { 'qingyang.cn/pool': 'intelligent', 'nvidia.com/gpu.product': 'H20', 'qingyang.cn/rack': 'r7', 'topology.kubernetes.io/zone': 'hall-b', 'qingyang.cn/security-level': 'restricted', 'nvidia.com/gpu.memory': '98304' }, { cpu: '95500m', memory: '1000Gi', 'nvidia.com/gpu': '8', 'rdma/hca': '2', pods: '110', 'ephemeral-storage': '1Ti', 'hugepages-2Mi': '0' });
    const out = nodeSpecOf(node, emptyResources(), nodeKeys, 700);
    expect(out).toMatchObject({ spec: { id: 'gpu-7_dc1', pool: 'intelligent', gpuModel: 'H20', rack: 'r7', zone: 'hall-b', securityLevel: 'restricted', ratedPowerWatts: 700, capacity: { cpuMillis: 95_500, memBytes: 1000 * GiB, gpus: 8, gpuMemBytes: 96 * GiB, extended: { 'rdma/hca': 2 } } } });
  });

  test('pods of other schedulers are taken off allocatable, never below zero', () => {
    const node = kNode('n1', { 'qingyang.cn/pool': 'general' }, { cpu: '4', memory: '8Gi' });
    const out = nodeSpecOf(node, { cpuMillis: 1500, memBytes: 10 * GiB, gpus: 0, extended: {} }, nodeKeys, 400);
    expect(out).toMatchObject({ spec: { capacity: { cpuMillis: 4000, memBytes: 8 * GiB }, allocatable: { cpuMillis: 2500, memBytes: 0 } } });
  });

  test('a node without the pool label is ignored, unless a default pool is configured', () => {
    const node = kNode('n2', {}, { cpu: '4', memory: '8Gi' });
    expect(nodeSpecOf(node, emptyResources(), nodeKeys, 400)).toEqual({ ignored: 'no qingyang.cn/pool label' });
    expect(nodeSpecOf(node, emptyResources(), { ...nodeKeys, defaultPool: 'general' }, 400)).toMatchObject({ spec: { pool: 'general' } });
    expect(nodeSpecOf(kNode('n3', { 'qingyang.cn/pool': 'gpu' }, { cpu: '1', memory: '1Gi' }), emptyResources(), nodeKeys, 400)).toEqual({ ignored: 'qingyang.cn/pool=gpu is not a pool' });
  });

  test('node names map to subject-safe ids and back', () => {
    expect(nodeIdOf('ip-10-0-0-1.ec2.internal')).toBe('ip-10-0-0-1_ec2_internal');
    expect(kubeNodeNameOf('ip-10-0-0-1_ec2_internal')).toBe('ip-10-0-0-1.ec2.internal');
    expect(nodeIdOf('x'.repeat(64))).toBeUndefined();
  });
});

describe('pod → job', () => {
  test('effective requests: containers summed, the largest init container if larger, sidecars and overhead added', () => {
    const pod = kPod('p', {
      containers: [
        { name: 'a', resources: { requests: { cpu: '500m', memory: '1Gi', 'nvidia.com/gpu': '1' } } },
        { name: 'b', resources: { requests: { cpu: '250m' }, limits: { memory: '512Mi' } } },
      ],
      initContainers: [
        { name: 'setup', resources: { requests: { cpu: '2', memory: '256Mi' } } },
        { name: 'proxy', restartPolicy: 'Always', resources: { requests: { cpu: '100m', memory: '64Mi' } } },
      ],
      overhead: { cpu: '50m' },
    });
    expect(podRequests(pod)).toEqual({ cpuMillis: 2050, memBytes: 1.5 * GiB + 64 * 1024 ** 2, gpus: 1, extended: {} });
  });

  test('tenant and pool come from the namespace, priority from the annotation or a known priorityClassName', () => {
    const out = jobOfUnit({ key: 'k', pods: [kPod('train', { priorityClassName: 'batch', activeDeadlineSeconds: 600, nodeSelector: { disk: 'ssd' } }, { annotations: { 'qingyang.cn/data-class': 'internal' } })] }, ns, podKeys);
    expect(out).toEqual({
      tenant: 'beijing',
      spec: { name: 'team-a/train', pool: 'general', priorityClass: 'batch', tasks: 1, resources: { cpuMillis: 1000, memBytes: GiB, gpus: 0, extended: {} }, walltimeSeconds: 600, constraints: { nodeSelector: { disk: 'ssd' }, tolerations: [] }, dataClass: 'internal' },
    });
    const annotated = jobOfUnit({ key: 'k', pods: [kPod('x', { priorityClassName: 'system-node-critical' }, { annotations: { 'qingyang.cn/priority-class': 'urgent' }, labels: { 'qingyang.cn/pool': 'super' } })] }, ns, podKeys);
    expect(annotated).toMatchObject({ error: expect.stringMatching(/walltimeSeconds/) });
    const unknownClass = jobOfUnit({ key: 'k', pods: [kPod('y', { priorityClassName: 'system-node-critical' })] }, ns, podKeys);
    expect(unknownClass).toMatchObject({ spec: { pool: 'general' } });
    expect(unknownClass).not.toHaveProperty('spec.priorityClass');
  });

  test('a namespace without a tenant is refused with a clear reason, unless a default tenant is configured', () => {
    const bare = kubeNamespaceSchema.parse({ metadata: { name: 'team-a', labels: { 'qingyang.cn/pool': 'general' } } });
    expect(jobOfUnit({ key: 'k', pods: [kPod('p')] }, bare, podKeys)).toEqual({ error: 'namespace team-a has no qingyang.cn/tenant label naming its tenant' });
    expect(jobOfUnit({ key: 'k', pods: [kPod('p')] }, bare, { ...podKeys, defaultTenant: 'shared' })).toMatchObject({ tenant: 'shared' });
  });
});

describe('gangs', () => {
  const gang = (group: string, min: string) => ({ annotations: { 'qingyang.cn/pod-group': group, 'qingyang.cn/min-member': min } });

  test('a gang waits until min-member pods exist, then is one unit ordered by name', () => {
    const pods = [kPod('w-2', {}, gang('w', '3')), kPod('w-0', {}, gang('w', '3'))];
    expect(groupPods(pods)).toEqual({ units: [], waiting: [{ pods: [pods[1], pods[0]], reason: 'WaitingForGang', message: 'pod group w has 2 of 3 pods' }] });
    const third = kPod('w-1', {}, gang('w', '3'));
    const { units } = groupPods([...pods, third]);
    expect(units).toHaveLength(1);
    expect(units[0].pods.map((p) => p.metadata.name)).toEqual(['w-0', 'w-1', 'w-2']);
    expect(units[0].key).toMatch(/^kube-gang-[0-9a-f]{32}$/);
    // The same members give the same key, whatever order the informer lists them in.
    expect(groupPods([third, ...pods]).units[0].key).toBe(units[0].key);
  });

  test('the Volcano and coscheduling group keys are accepted; a group without a size is refused', () => {
    const volcano = kPod('v-0', {}, { annotations: { 'scheduling.k8s.io/group-name': 'v', 'qingyang.cn/min-member': '1' } });
    const cosched = kPod('c-0', {}, { labels: { 'pod-group.scheduling.sigs.k8s.io': 'c' }, annotations: { 'qingyang.cn/min-member': '1' } });
    expect(groupPods([volcano, cosched]).units.map((u) => u.gang?.name)).toEqual(['v', 'c']);
    const sizeless = kPod('s-0', {}, { annotations: { 'qingyang.cn/pod-group': 's' } });
    expect(groupPods([sizeless]).waiting[0].message).toBe('pod group s needs a qingyang.cn/min-member annotation with a positive integer');
  });

  test('pods of a gang must request the same', () => {
    const a = kPod('g-0', {}, gang('g', '2'));
    const b = kPod('g-1', { containers: [{ name: 'main', resources: { requests: { cpu: '2', memory: '1Gi' } } }] }, gang('g', '2'));
    const { units } = groupPods([a, b]);
    expect(jobOfUnit(units[0], ns, podKeys)).toEqual({ error: 'pods of group g must request the same resources: g-0 asks cpuMillis=1000 memBytes=1073741824, g-1 asks cpuMillis=2000 memBytes=1073741824' });
  });

  test('a finished member keeps its gang’s key (a restarted bridge finds the job); a finished gang makes no job', () => {
    const members = [0, 1].map((i) => kPod(`f-${i}`, { nodeName: 'n1' }, gang('f', '2')));
    const key = groupPods(members).units[0].key;
    const oneDone = [kubePodSchema.parse({ ...members[0], status: { phase: 'Succeeded' } }), members[1]];
    expect(groupPods(oneDone).units[0].key).toBe(key);
    const allDone = members.map((m) => kubePodSchema.parse({ ...m, status: { phase: 'Failed' } }));
    expect(groupPods(allDone)).toEqual({ units: [], waiting: [] });
  });

  test('finished and deleting pods make no job; single pods are keyed by UID', () => {
    const done = kubePodSchema.parse({ ...kPod('d'), status: { phase: 'Succeeded' } });
    const live = kPod('l');
    expect(groupPods([done, live]).units.map((u) => u.key)).toEqual([`kube-pod-${live.metadata.uid}`]);
  });
});
