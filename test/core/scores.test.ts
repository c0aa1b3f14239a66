import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, prepareJob, type ScorePlugin, type SchedJob } from '../../src/core';
import { greenShare, leastAllocated, mostAllocated, packGpus, powerHeadroom, preferredAffinity, taintPreference } from '../../src/core/scores';
import type { NodeSpec } from '../../src/protocol';
import { GiB, gpuNodeSpec, job, nodeSpec } from './fixtures';

interface Case {
  name: string;
  node: NodeSpec;
  job: SchedJob;
  taken?: SchedJob;
  telemetry?: { powerWatts: number; greenShare: number };
  want: number;
}

function score(plugin: ScorePlugin, c: Case): number {
  const cluster = new ClusterState();
  const node = cluster.upsertNode(c.node);
  if (c.telemetry) cluster.setNodeTelemetry(node.id, c.telemetry.powerWatts, c.telemetry.greenShare);
  if (c.taken) {
    const p = prepareJob(c.taken, DEFAULT_POLICY);
    const out: Parameters<typeof node.planTasks>[3] = [];
    node.planTasks(p.task, 1, 0, out);
    cluster.reserve({ jobId: c.taken.id, tenant: 't', pool: c.node.pool, dataClass: 'public', exclusive: false, tasks: out });
  }
  return plugin.score(prepareJob(c.job, DEFAULT_POLICY), node);
}

const gpuJob = (gpus: number) => job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus } });

const table: [ScorePlugin, Case[]][] = [
  [
    leastAllocated,
    [
      { name: 'empty node, small job scores high', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 1600, memBytes: 0 } }), want: 95 },
      { name: 'job filling the node scores 0', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 16_000, memBytes: 64 * GiB } }), want: 0 },
      { name: 'half used node', node: nodeSpec('n'), taken: job({ resources: { cpuMillis: 8000, memBytes: 32 * GiB } }), job: job({ resources: { cpuMillis: 1600, memBytes: 0 } }), want: 45 },
    ],
  ],
  [
    mostAllocated,
    [
      { name: 'empty node, small job scores low', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 1600, memBytes: 0 } }), want: 5 },
      { name: 'job filling the node scores full', node: nodeSpec('n'), job: job({ resources: { cpuMillis: 16_000, memBytes: 64 * GiB } }), want: 100 },
    ],
  ],
  [
    packGpus,
    [
      { name: 'one GPU on an empty server', node: gpuNodeSpec('g'), job: gpuJob(1), want: 12 },
      { name: 'one GPU on a server with six in use', node: gpuNodeSpec('g'), taken: gpuJob(6), job: gpuJob(1), want: 87 },
      { name: 'the last GPU completes the server', node: gpuNodeSpec('g'), taken: gpuJob(7), job: gpuJob(1), want: 100 },
      { name: 'CPU-only node scores 0', node: nodeSpec('n', { pool: 'intelligent' }), job: job({ pool: 'intelligent' }), want: 0 },
    ],
  ],
  [
    greenShare,
    [
      { name: 'no report yet', node: nodeSpec('n'), job: job(), want: 0 },
      { name: 'three quarters green', node: nodeSpec('n'), job: job(), telemetry: { powerWatts: 100, greenShare: 0.75 }, want: 75 },
      { name: 'all green', node: nodeSpec('n'), job: job(), telemetry: { powerWatts: 100, greenShare: 1 }, want: 100 },
    ],
  ],
  [
    powerHeadroom,
    [
      { name: 'no rated power: middle score', node: nodeSpec('n'), job: job(), want: 50 },
      { name: 'a quarter of rated power drawn', node: nodeSpec('n', { ratedPowerWatts: 800 }), job: job(), telemetry: { powerWatts: 200, greenShare: 0 }, want: 75 },
      { name: 'over rated power', node: nodeSpec('n', { ratedPowerWatts: 800 }), job: job(), telemetry: { powerWatts: 900, greenShare: 0 }, want: 0 },
    ],
  ],
  [
    preferredAffinity,
    [
      { name: 'no preferences', node: nodeSpec('n'), job: job(), want: 0 },
      {
        name: 'matches the heavier of two terms',
        node: nodeSpec('n', { labels: { disk: 'nvme' } }),
        job: job({ constraints: { preferred: [{ weight: 3, requirement: { key: 'disk', operator: 'In', values: ['nvme'] } }, { weight: 1, requirement: { key: 'gen', operator: 'Exists' } }] } }),
        want: 75,
      },
    ],
  ],
  [
    taintPreference,
    [
      { name: 'no taints', node: nodeSpec('n'), job: job(), want: 100 },
      { name: 'untolerated PreferNoSchedule', node: nodeSpec('n', { taints: [{ key: 'old', value: '', effect: 'PreferNoSchedule' }] }), job: job(), want: 0 },
      { name: 'tolerated PreferNoSchedule', node: nodeSpec('n', { taints: [{ key: 'old', value: '', effect: 'PreferNoSchedule' }] }), job: job({ constraints: { tolerations: [{ key: 'old', operator: 'Exists' }] } }), want: 100 },
    ],
  ],
];

for (const [plugin, cases] of table) {
  describe(plugin.name, () => {
    for (const c of cases) {
      test(c.name, () => {
        const got = score(plugin, c);
        expect(Number.isInteger(got)).toBe(true);
        expect(got).toBe(c.want);
      });
    }
  });
}
