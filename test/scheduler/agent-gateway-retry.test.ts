import { describe, expect, test } from 'vitest';
import { AgentGateway } from '../../scheduler/agent-gateway';
import type { AttemptRecord, JobRecord } from '../../scheduler/state/job-table';
import type { Assignment, CancelOrder } from '../../src/protocol';
import { createLogger } from '../../src/telemetry/logger';
import { ManualClock } from '../helpers/manual-clock';

/**
 * Work JetStream did not store (a timeout while a NATS server of the cluster is lost and the stream elects a
 * leader: the scheduler's own connection may stay up, so no reconnect and no rebuild follow) must be sent
 * again. Before, it was only logged, and the job stayed `placed` for ever: the chaos campaign (seed 36) lost
 * 14 jobs placed in the seconds after a NATS server was killed.
 */
function setup() {
  const clock = new ManualClock(1_000_000);
  let term = 7;
  const sent: { subject: string; work: Assignment | CancelOrder }[] = [];
  let failures = 0;
  const publisher = {
    publish: (subject: string, data: string) => {
      sent.push({ subject, work: JSON.parse(data) });
      return failures-- > 0 ? Promise.reject(new Error('timeout')) : Promise.resolve({ stream: 'QY_ASSIGN', seq: sent.length, duplicate: false });
    },
  };
  const task = { state: 'assigned', placement: { taskIndex: 0, nodeId: 'n1', cpuMillis: 100, memBytes: 1, gpuIndices: [], gpuMilliEach: 0, extended: {} } };
  const attempt = { attemptId: 'j1-a1', tasks: [task], placement: { tasks: [task.placement] } } as unknown as AttemptRecord;
  const job = { id: 'j1', tenant: 't', spec: { pool: 'general', env: {}, dataClass: 'public', sandbox: false }, sched: { walltimeMs: 60_000 }, current: attempt } as unknown as JobRecord;
  const gateway = new AgentGateway({
    registry: { entries: new Map([['n1', { agentId: 'a1', spec: { pool: 'general' } }]]), onForgotten: [] },
    leadership: { termOf: () => term },
    publisher,
    store: { table: { get: (id: string) => (id === 'j1' ? job : undefined), liveTasks: (a: AttemptRecord) => a.tasks.filter((t) => t.state === 'assigned' || t.state === 'running') } },
    config: { cancelGraceMs: 1_000 },
    clock,
    log: createLogger({ level: 'silent', name: 'test' }),
  } as never);
  return {
    clock,
    sent,
    gateway,
    job,
    attempt,
    task,
    failNext: (n: number) => (failures = n),
    newTerm: () => term++,
  };
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('AgentGateway: work JetStream did not store', () => {
  test('an assignment is sent again with backoff, stamped anew, until it is stored', async () => {
    const t = setup();
    t.failNext(3);
    t.gateway.sendAssignments(t.job, t.attempt);
    await turns();
    expect(t.sent).toHaveLength(1);
    for (const [afterMs, expected] of [[250, 2], [500, 3], [1_000, 4]] as const) {
      t.clock.advanceTo(t.clock.now() + afterMs - 1);
      await turns();
      expect(t.sent).toHaveLength(expected - 1);
      t.clock.advanceTo(t.clock.now() + 1);
      await turns();
      expect(t.sent).toHaveLength(expected);
    }
    // Stored at the fourth try: nothing more.
    t.clock.advanceTo(t.clock.now() + 60_000);
    await turns();
    expect(t.sent).toHaveLength(4);
    expect(t.sent.every((s) => s.subject === t.sent[0].subject && s.work.type === 'assign' && s.work.term === 7 && s.work.attemptId === 'j1-a1')).toBe(true);
    expect(t.sent[3].work.atMs).toBe(t.clock.now() - 60_000);
    expect(t.sent[3].work.atMs).toBeGreaterThan(t.sent[0].work.atMs);
  });

  test('not sent again once the task started, the attempt is being stopped, or the term changed', async () => {
    for (const change of ['started', 'stopping', 'term'] as const) {
      const t = setup();
      t.failNext(1);
      t.gateway.sendAssignments(t.job, t.attempt);
      await turns();
      if (change === 'started') t.task.state = 'running';
      else if (change === 'stopping') (t.attempt as { stop?: unknown }).stop = { reason: 'cancelled' };
      else t.newTerm();
      t.clock.advanceTo(t.clock.now() + 10_000);
      await turns();
      expect(t.sent, change).toHaveLength(1);
    }
  });

  test('a cancel is sent again while the task is live on the node', async () => {
    const t = setup();
    t.task.state = 'running';
    t.failNext(2);
    t.gateway.sendCancels(t.job, t.attempt, 'cancelled by the tenant');
    await turns();
    t.clock.advanceTo(t.clock.now() + 250);
    await turns();
    expect(t.sent.map((s) => s.work.type)).toEqual(['cancel', 'cancel']);
    t.task.state = 'cancelled';
    t.clock.advanceTo(t.clock.now() + 10_000);
    await turns();
    expect(t.sent).toHaveLength(2);
  });
});
