import { afterAll, expect, test } from 'vitest';
import { JetStreamPublisher } from '../../src/store/js-publisher';
import { JobLog } from '../../src/store/job-log';
import { WorkFence } from '../../src/store/lease';
import { connectNats } from '../../src/store/nats';
import { startNatsServer } from '../../harness/nats-server';
import { subjects, type Assignment } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { silentLog, startAgent, startScheduler, testNode, waitForNodes } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

test('the fence keeps the highest term per node: nodes of different pools do not fence each other', () => {
  const fence = new WorkFence();
  expect(fence.admits('cpu-1', 3)).toBe(true);
  expect(fence.admits('gpu-1', 1)).toBe(true); // another pool's leader counts its own terms
  expect(fence.admits('cpu-1', 2)).toBe(false);
  expect(fence.admits('cpu-1', 3)).toBe(true);
  expect(fence.admits('cpu-1', undefined)).toBe(true); // work from before replicas carried no term
  expect(fence.highestFor('cpu-1')).toBe(3);
});

test('an agent ignores work for a node from an older term than it has seen, and runs work of the current one', async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  const s = await startScheduler(nats.url);
  cleanups.push(() => s.close());
  const agent = await startAgent(nats.url, 'wf', [testNode('wf-1')], 'virtual');
  cleanups.push(() => agent.stop());
  await waitForNodes(s.operator, ['wf-1']);
  const term = s.scheduler.leadership.termOf('general')!;
  // A real job: the agent sees the leader's term for wf-1.
  const real = await s.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0 });
  await s.api.waitFor(real, ['succeeded']);

  const nc = await connectNats(nats.url, 'deposed-leader');
  cleanups.push(() => nc.close());
  const publisher = new JetStreamPublisher(nc);
  const work = (jobId: string, t: number): Assignment => ({
    type: 'assign',
    jobId,
    attemptId: `${jobId}-a1`,
    nodeId: 'wf-1',
    tenant: 'city-a',
    tasks: [{ taskIndex: 0, nodeId: 'wf-1', cpuMillis: 100, memBytes: 1024, gpuIndices: [], gpuMilliEach: 0, extended: {} }],
    hosts: ['wf-1'],
    durationMs: 0,
    dataClass: 'public',
    sandbox: false,
    term: t,
    atMs: Date.now(),
  });
  // A deposed leader's late assignment, then one of the current term.
  await publisher.publish(subjects.assign('wf', 'wf-1'), JSON.stringify(work('ghost', term - 1)));
  await publisher.publish(subjects.assign('wf', 'wf-1'), JSON.stringify(work('current', term)));
  publisher.close();

  const reported = async () => {
    const jobs = new Set<string>();
    await new JobLog(nc, silentLog).replay((e) => {
      if (e.kind === 'status') jobs.add(e.status.jobId);
    });
    return jobs;
  };
  const seen = await waitUntil(async () => {
    const jobs = await reported();
    return jobs.has('current') ? jobs : undefined;
  }, 10_000);
  expect(seen.has('ghost')).toBe(false);
});
