import { describe, expect, test } from 'vitest';
import { SimTelemetry } from '../../agents/telemetry';
import type { SchedulerClient } from '../../src/client';
import { kubeNodeSchema, kubePodSchema } from '../../src/kube/kube-types';
import { nodeSpecOf, type NodeLabelKeys } from '../../src/kube/node-mapping';
import { NodeSync } from '../../src/kube/node-sync';
import { IDLE_POWER_SHARE } from '../../src/metering/power';
import type { NodeLink, HeartbeatBody } from '../../src/node-link/node-link';
import type { TaskPlacement } from '../../src/protocol';
import { createLogger } from '../../src/telemetry/logger';
import { emptyResources } from '../../src/kube/requests';

const GiB = 1024 ** 3;
const keys: NodeLabelKeys = { poolLabel: 'qingyang.cn/pool', gpuModelLabel: 'qingyang.cn/gpu-model', rackLabels: ['qingyang.cn/rack'], zoneLabel: 'topology.kubernetes.io/zone', securityLabel: 'qingyang.cn/security-level' };
const kubeNode = kubeNodeSchema.parse({
  metadata: { name: 'gpu-1', labels: { 'qingyang.cn/pool': 'intelligent', 'nvidia.com/gpu.product': 'H20', 'nvidia.com/gpu.memory': '98304' } },
  spec: {},
  status: { allocatable: { cpu: '32', memory: '256Gi', 'nvidia.com/gpu': '4' }, conditions: [{ type: 'Ready', status: 'True' }] },
});
const pod = (name: string, cpu: string, gpus: string) =>
  kubePodSchema.parse({
    metadata: { name, namespace: 'team-a', uid: `u-${name}` },
    spec: { schedulerName: 'qingyang-scheduler', nodeName: 'gpu-1', containers: [{ name: 'main', resources: { requests: { cpu, memory: '8Gi', 'nvidia.com/gpu': gpus } } }] },
    status: { phase: 'Running' },
  });
const task = (taskIndex: number, cpuMillis: number, gpuIndices: number[]): TaskPlacement => ({ taskIndex, nodeId: 'gpu-1', cpuMillis, memBytes: 8 * GiB, gpuIndices, gpuMilliEach: 1000, extended: {} });

/** The bridge's heartbeat for the node running `pods`, as its node link would send it (the link here accepts every registration). */
async function bridgeHeartbeat(pods: ReturnType<typeof pod>[]): Promise<HeartbeatBody> {
  let served: readonly string[] = [];
  const link: Pick<NodeLink, 'register' | 'serve'> = {
    register: async () => ({ outcome: 'ok', nodeState: 'ready' }),
    serve: (nodeIds) => {
      served = nodeIds;
    },
  };
  const scheduler = { node: async () => ({ cordoned: false }), cordon: async () => undefined } as unknown as SchedulerClient;
  const sync = new NodeSync({ link, scheduler, keys, schedulerName: 'qingyang-scheduler', ratedPowerWatts: 700, greenShare: 0.5, log: createLogger({ level: 'silent', name: 't' }), runningOn: () => [] });
  await sync.reconcile([kubeNode], pods);
  expect(served).toHaveLength(1);
  const heartbeat = sync.heartbeatOf(served[0]);
  if (!heartbeat) throw new Error('no heartbeat for a Ready, registered node');
  return heartbeat;
}

describe('one power model for agents and the Kubernetes bridge', () => {
  test('a GPU node running the same work reports the same watts, utilisation and GPU load by either path', async () => {
    const mapped = nodeSpecOf(kubeNode, emptyResources(), keys, 700);
    if ('ignored' in mapped) throw new Error(mapped.ignored);
    const agent = new SimTelemetry(mapped.spec, { shareAt: () => 0.5 } as never);
    for (const [pods, tasks] of [
      [[], []],
      [[pod('a', '4', '1')], [task(0, 4000, [0])]],
      [[pod('a', '4', '1'), pod('b', '2', '2')], [task(0, 4000, [0]), task(1, 2000, [1, 2])]],
    ] as const) {
      const viaBridge = await bridgeHeartbeat([...pods]);
      const viaAgent = await agent.sample(0, [...tasks]);
      expect(viaBridge.powerWatts, `${pods.length} pods`).toBe(viaAgent.powerWatts);
      expect(viaBridge.cpuUtil).toBe(viaAgent.cpuUtil);
      expect(viaBridge.gpus).toEqual(viaAgent.gpus);
    }
    // By hand, for the last case: 6 of 32 cores and 3 of 4 GPUs, GPUs weighing 80%: busy = 0.8·0.75 + 0.2·6/32.
    const busy = 0.8 * 0.75 + 0.2 * (6 / 32);
    const idle = IDLE_POWER_SHARE * 700;
    const last = await bridgeHeartbeat([pod('a', '4', '1'), pod('b', '2', '2')]);
    expect(last.powerWatts).toBeCloseTo(idle + busy * (700 - idle), 1);
  });
});
