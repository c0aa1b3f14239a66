import { describe, expect, test } from 'vitest';
import { JobTable } from '../../scheduler/state/job-table';
import { ClusterState, DEFAULT_POLICY, PendingQueue, placeJob } from '../../src/core';
import { jobSpecSchema, type JobPlaced, type JobSpecInput, type StatusReport } from '../../src/protocol';
import { nodeSpec } from '../core/fixtures';

function setup(nodes = 2) {
  const cluster = new ClusterState();
  for (let i = 1; i <= nodes; i++) cluster.upsertNode(nodeSpec(`n${i}`, { rack: `r${i}` }));
  const pending = new PendingQueue();
  return { cluster, pending, table: new JobTable(cluster, pending) };
}

function submit(t: JobTable, jobId: string, spec: Partial<JobSpecInput> = {}, maxAttempts = 3) {
  const parsed = jobSpecSchema.parse({ pool: 'general', resources: { cpuMillis: 1000, memBytes: 0 }, ...spec });
  return t.applySubmitted({ type: 'submitted', v: 1, jobId, tenant: 't', spec: parsed, submittedAtMs: 1, priority: 500, maxAttempts });
}

function place(t: JobTable, cluster: ClusterState, jobId: string): JobPlaced {
  const job = t.get(jobId)!;
  const result = placeJob(cluster, job.sched, DEFAULT_POLICY);
  if (!result.ok) throw new Error('expected a placement');
  const attempt = job.attempts.length + 1;
  const e: JobPlaced = { type: 'placed', jobId, attempt, attemptId: `${jobId}-a${attempt}`, placement: result.placement, atMs: 2 };
  t.applyPlaced(e);
  return e;
}

const status = (e: JobPlaced, taskIndex: number, state: StatusReport['state'], extra: Partial<StatusReport> = {}): StatusReport => ({
  type: 'status',
  nodeId: e.placement.tasks[taskIndex].nodeId,
  jobId: e.jobId,
  attemptId: e.attemptId,
  taskIndex,
  state,
  atMs: 3,
  ...extra,
});

describe('JobTable', () => {
  test('submit → placed → running → succeeded releases the resources', () => {
    const { cluster, pending, table } = setup();
    submit(table, 'j1');
    expect(pending.has('j1')).toBe(true);
    const e = place(table, cluster, 'j1');
    expect(pending.has('j1')).toBe(false);
    expect(table.get('j1')!.state).toBe('placed');
    table.applyStatus(status(e, 0, 'running'));
    expect(table.get('j1')!.state).toBe('running');
    const effects = table.applyStatus(status(e, 0, 'succeeded', { exitCode: 0 }));
    expect(table.get('j1')).toMatchObject({ state: 'succeeded', exitCode: 0, finishedAtMs: 3 });
    expect(effects.map((x) => x.kind)).toEqual(['capacity-freed', 'job-ended']);
    expect(cluster.placementOf('j1')).toBeUndefined();
  });

  test('duplicate and stale reports change nothing; a stray running task is flagged', () => {
    const { cluster, table } = setup();
    submit(table, 'j1');
    const e = place(table, cluster, 'j1');
    table.applyStatus(status(e, 0, 'running'));
    expect(table.applyStatus(status(e, 0, 'running'))).toEqual([]);
    const stray = table.applyStatus({ ...status(e, 0, 'running'), attemptId: 'j1-a9' });
    expect(stray).toEqual([{ kind: 'stray-task', nodeId: e.placement.tasks[0].nodeId, jobId: 'j1', attemptId: 'j1-a9', taskIndex: 0 }]);
    expect(table.applyStatus({ ...status(e, 0, 'succeeded'), nodeId: 'elsewhere' })).toEqual([]);
    expect(table.get('j1')!.state).toBe('running');
  });

  test('a failed gang task stops the others; the job fails when all have ended', () => {
    const { cluster, table } = setup(2);
    submit(table, 'g', { tasks: 2 });
    const e = place(table, cluster, 'g');
    table.applyStatus(status(e, 0, 'running'));
    table.applyStatus(status(e, 1, 'running'));
    const effects = table.applyStatus(status(e, 1, 'failed', { exitCode: 7, reason: 'exited with code 7' }));
    expect(effects.map((x) => x.kind)).toEqual(['stop-tasks']);
    expect(table.get('g')!.state).toBe('running');
    expect(cluster.placementOf('g')).toBeDefined();
    table.applyStatus(status(e, 0, 'cancelled', { signal: 'SIGTERM' }));
    expect(table.get('g')).toMatchObject({ state: 'failed', exitCode: 7, reason: 'exited with code 7' });
    expect(cluster.placementOf('g')).toBeUndefined();
  });

  test('a node going down requeues the job; after maxAttempts it fails for good', () => {
    const { cluster, pending, table } = setup();
    submit(table, 'j', {}, 2);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const e = place(table, cluster, 'j');
      table.applyStatus(status(e, 0, 'running'));
      table.applyRequeued({ type: 'requeued', jobId: 'j', attemptId: e.attemptId, lostNodeIds: [e.placement.tasks[0].nodeId], reason: 'node down', atMs: 4 });
      if (attempt === 1) {
        expect(table.get('j')!.state).toBe('pending');
        expect(pending.has('j')).toBe(true);
      }
    }
    expect(table.get('j')).toMatchObject({ state: 'failed', reason: 'gave up after 2 attempts; last: node down' });
    expect(table.get('j')!.attempts.map((a) => a.outcome)).toEqual(['requeued', 'requeued']);
  });

  test('a lost task (agent restarted) requeues the job', () => {
    const { cluster, table } = setup();
    submit(table, 'j');
    const e = place(table, cluster, 'j');
    table.applyStatus(status(e, 0, 'lost', { reason: 'agent restarted while the task ran' }));
    expect(table.get('j')).toMatchObject({ state: 'pending', reason: `task 0 lost on ${e.placement.tasks[0].nodeId}: agent restarted while the task ran` });
  });

  test('cancel: a pending job ends at once; a running one once its tasks stop', () => {
    const { cluster, pending, table } = setup();
    submit(table, 'p');
    table.applyCancelRequested({ type: 'cancel-requested', jobId: 'p', reason: 'by user', atMs: 5 });
    expect(table.get('p')).toMatchObject({ state: 'cancelled', reason: 'by user' });
    expect(pending.has('p')).toBe(false);

    submit(table, 'r');
    const e = place(table, cluster, 'r');
    table.applyStatus(status(e, 0, 'running'));
    const effects = table.applyCancelRequested({ type: 'cancel-requested', jobId: 'r', reason: 'by user', atMs: 5 });
    expect(effects.map((x) => x.kind)).toEqual(['stop-tasks']);
    expect(table.get('r')!.state).toBe('cancelling');
    table.applyStatus(status(e, 0, 'cancelled'));
    expect(table.get('r')!.state).toBe('cancelled');
    expect(table.applyCancelRequested({ type: 'cancel-requested', jobId: 'r', reason: 'again', atMs: 6 })).toEqual([]);
  });

  test('a job that succeeds while its cancel is on the way ends succeeded', () => {
    const { cluster, table } = setup();
    submit(table, 'r');
    const e = place(table, cluster, 'r');
    table.applyCancelRequested({ type: 'cancel-requested', jobId: 'r', reason: 'by user', atMs: 5 });
    table.applyStatus(status(e, 0, 'succeeded', { exitCode: 0 }));
    expect(table.get('r')).toMatchObject({ state: 'succeeded', exitCode: 0 });
  });

  test('replaying the same events rebuilds the same state', () => {
    const build = () => {
      const s = setup();
      submit(s.table, 'a');
      submit(s.table, 'b', { tasks: 2 });
      const ea = place(s.table, s.cluster, 'a');
      s.table.applyStatus(status(ea, 0, 'running'));
      place(s.table, s.cluster, 'b');
      return s;
    };
    const one = build();
    const two = build();
    expect([...two.table.jobs.values()].map((j) => [j.id, j.state, j.current?.placement])).toEqual([...one.table.jobs.values()].map((j) => [j.id, j.state, j.current?.placement]));
    expect(two.cluster.poolSummary('general')).toEqual(one.cluster.poolSummary('general'));
  });

  test('a placement event for a job that no longer waits is ignored', () => {
    const { cluster, table } = setup();
    submit(table, 'j');
    const e = place(table, cluster, 'j');
    expect(table.applyPlaced(e)).toEqual([]);
    expect(table.applyPlaced({ ...e, jobId: 'unknown' })).toEqual([]);
  });
});
