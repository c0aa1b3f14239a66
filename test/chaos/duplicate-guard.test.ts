import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Agent } from '../../agents/agent';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { check, parseHistory, type FinalJob } from '../../chaos/checker';
import { chaosJob } from '../../chaos/workload';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { agentConsumerName, STREAMS, subjects, type TaskUsage } from '../../src/protocol';
import { seededRng } from '../../src/sim/rng';
import { waitUntil } from '../helpers/api';
import { startScheduler, testAgentOptions, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

/**
 * The agent's journal guard is what keeps a repeated assignment (a scheduler that re-sends placed work after
 * a restart, a redelivery) from starting a task twice; the scheduler's job table ignores a second run's
 * reports, so only the tasks' own history shows it. Here one assignment is delivered twice to an agent with
 * the guard on, then to one with it off: the chaos checker must count a duplicate start only in the second case.
 */
let nats: LocalNatsServer;
let s: TestScheduler;
/**
 * Unhurried leases and node liveness: the subject here is the agent's guard, and on a busy machine the test
 * stack's fast ones (1 s to renew a lease, 1.5 s to declare a node down) could re-elect the scheduler or
 * declare the node down between the two deliveries, which drops or reroutes the replayed work for reasons
 * of their own (a CI run saw 'the second run did not start').
 */
const SCHEDULER = { leaseDurationMs: '15000', leaseRenewDeadlineMs: '10000', leaseRetryMs: '2000', suspectAfterMs: '10000', downAfterMs: '20000' };
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url, SCHEDULER);
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await s?.close();
  await nats?.dispose();
});

async function startAgent(agentId: string, nodeId: string, guardOff: boolean): Promise<Agent> {
  const agent = new Agent(testAgentOptions(nats.url, agentId, [testNode(nodeId)], { runner: new ProcessRunner(5_000), unsafeDisableDuplicateGuard: guardOff }));
  await agent.start();
  await waitForNodes(s.operator, [nodeId]);
  return agent;
}

/** Runs one job on the agent, then publishes its assignment to the agent's work queue a second time; returns what the checker finds. */
async function runWithReplayedAssignment(agentId: string, guardOff: boolean) {
  const nodeId = `${agentId}-node`;
  const agent = await startAgent(agentId, nodeId, guardOff);
  try {
    const history = join(mkdtempSync(join(tmpdir(), 'qy-guard-history-')), 'history.log');
    writeFileSync(history, '');
    // The assignment as the scheduler published it, seen by a plain subscriber of the agent's subject.
    const seen: Msg[] = [];
    const sub = nc.subscribe(subjects.assignForAgent(agentId), { callback: (_, msg) => void seen.push(msg) });
    // The task ignores SIGTERM from its first instruction, so a run the scheduler stops at once (a stray) still
    // gets to write its start line. (A `trap` inside the script left bash's start-up open: on a busy machine the
    // stray's stop came first and the second run never wrote its line.) The kill grace leaves it time to.
    const job = chaosJob(history, seededRng(1));
    job.command = ['env', '--ignore-signal=TERM', ...job.command!];
    const jobId = await s.api.submit(job, `guard-${agentId}`);
    const first = await s.api.waitFor(jobId, ['succeeded', 'failed'], 30_000);
    expect(first.state).toBe('succeeded');
    sub.unsubscribe();
    const assignment = seen.find((m) => (m.json() as { type: string }).type === 'assign')!;
    expect(assignment).toBeDefined();

    // The same work again, as a scheduler restarted before it saw the agent's acknowledgement would send it.
    // Sent afresh (as a rebuilt scheduler's reconciliation does): work that waited too long is not started at all.
    // With the guard off, the scheduler would stop the replayed run as a stray as soon as it sees its `running`
    // report, which the agent sends as it hands the task over: on a busy machine the stop came back before the
    // process reached its first instruction (`env` ignoring SIGTERM), it died before writing its start line, and
    // no second run showed (a CI failure). So the scheduler is away while the replay is handled, and started
    // again once the run has begun: it rebuilds from the job log, where the run's reports wait.
    if (guardOff) await s.close();
    const ack = await jetstream(nc).publish(assignment.subject, JSON.stringify({ ...(assignment.json() as object), atMs: Date.now() }));
    const consumer = agentConsumerName(agentId);
    const jsm = await jetstreamManager(nc);
    // The agent acknowledges a work message only once it has handled it (started its tasks or dropped them).
    await waitUntil(async () => ((await jsm.consumers.info(STREAMS.assign, consumer)).ack_floor.stream_seq >= ack.seq ? true : undefined), 30_000, () => 'the replayed assignment was not handled');
    if (guardOff) {
      await waitUntil(() => (parseHistory(readFileSync(history, 'utf8')).runs.length >= 2 ? true : undefined), 30_000, () => 'the second run did not start');
      s = await startScheduler(nats.url, SCHEDULER);
    }

    const final = await s.api.job(jobId);
    const finalJobs = new Map<string, FinalJob>([[jobId, { id: jobId, state: final.state, tasks: final.tasks, attemptId: final.attemptId }]]);
    const period = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 7);
    const usage = (await s.api.request<{ items: TaskUsage[] }>('GET', `/v1/usage/tasks?period=${period}&jobId=${jobId}`)).body.items;
    const metered = usage.map((u) => ({ jobId: u.jobId, attemptId: u.attemptId, taskIndex: u.taskIndex, runMs: u.segments.reduce((n, x) => n + x.runMs, 0), cpuMilliSeconds: u.segments.reduce((n, x) => n + x.cpuMilliSeconds, 0) }));
    const result = check({ history: parseHistory(readFileSync(history, 'utf8')), acks: [{ idempotencyKey: `guard-${agentId}`, jobId }], finalJobs, metered, auditOk: true });
    return { result, final };
  } finally {
    await agent.stop();
  }
}

describe('the chaos checker sees a broken duplicate-assignment guard', () => {
  test('with the journal guard, a repeated assignment is dropped: no duplicate start', async () => {
    const { result, final } = await runWithReplayedAssignment('guard-on', false);
    expect(final.state).toBe('succeeded');
    expect(result).toMatchObject({ acked: 1, lost: 0, duplicateStarts: 0, overlaps: 0, unmetered: 0 });
  }, 90_000);

  test('with the guard turned off, the same attempt runs twice, the job still reads succeeded, and the checker counts it', async () => {
    const { result, final } = await runWithReplayedAssignment('guard-off', true);
    expect(final.state).toBe('succeeded'); // the API alone cannot tell
    expect(result.duplicateStarts).toBe(1);
    expect(result.examples.duplicateStarts[0]).toMatch(new RegExp(`^${final.attemptId}/0 started 2 times`));
    expect(result).toMatchObject({ lost: 0, overlaps: 0 });
  }, 90_000);
});
