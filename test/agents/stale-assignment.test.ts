import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg } from '@nats-io/transport-node';
import { afterAll, expect, test } from 'vitest';
import { Agent } from '../../agents/agent';
import { parseHistory } from '../../chaos/checker';
import { chaosJob } from '../../chaos/workload';
import { startNatsServer } from '../../harness/nats-server';
import { agentConsumerName, STREAMS, subjects } from '../../src/protocol';
import { seededRng } from '../../src/sim/rng';
import { waitUntil } from '../helpers/api';
import { startScheduler, testAgentOptions, testNode, waitForNodes } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/**
 * Found by the chaos campaign (seed 15): an agent restarted after its node had been declared down found the
 * old assignment waiting in its work queue and started it, while the requeued attempt already ran elsewhere.
 * Work older than half the down threshold is now reported lost instead of started.
 */
test('an assignment that waited longer than half the down threshold is not started; a fresh one is', async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  // A long down threshold: on a busy machine a fresh assignment may take seconds to arrive, and must not look stale.
  const s = await startScheduler(nats.url, { downAfterMs: '60000', suspectAfterMs: '3000' });
  cleanups.push(() => s.close());
  const spec = testNode('stale-node');
  const agent = new Agent(testAgentOptions(nats.url, 'stale', [spec]));
  await agent.start();
  cleanups.push(() => agent.stop());
  await waitForNodes(s.operator, ['stale-node']);
  const nc = await connect({ servers: nats.url });
  cleanups.push(() => nc.close());

  const history = join(mkdtempSync(join(tmpdir(), 'qy-stale-history-')), 'history.log');
  writeFileSync(history, '');
  const seen: Msg[] = [];
  const sub = nc.subscribe(subjects.assignForAgent('stale'), { callback: (_, msg) => void seen.push(msg) });
  const job = chaosJob(history, seededRng(3));
  const jobId = await s.api.submit(job);
  expect((await s.api.waitFor(jobId, ['succeeded', 'failed'], 30_000)).state).toBe('succeeded');
  sub.unsubscribe();
  const original = seen.map((m) => m.json() as { type: string; attemptId: string; atMs: number }).find((w) => w.type === 'assign')!;

  // The same work under attempt ids the agent has not seen: one sent five minutes ago, one just now.
  const jsm = await jetstreamManager(nc);
  const deliver = async (attemptId: string, atMs: number) => {
    const ack = await jetstream(nc).publish(subjects.assign('stale', 'stale-node'), JSON.stringify({ ...original, attemptId, atMs }));
    await waitUntil(async () => ((await jsm.consumers.info(STREAMS.assign, agentConsumerName('stale'))).ack_floor.stream_seq >= ack.seq ? true : undefined), 30_000, () => `${attemptId} not handled`);
  };
  // What the agent says of each: its status reports (a stray run is cancelled by the scheduler at once, so
  // whether the fresh one got to write its start line is a race with that cancel; its report is not).
  const reports: { attemptId: string; state: string }[] = [];
  const statuses = nc.subscribe(subjects.status('stale-node'), { callback: (_, msg) => void reports.push(msg.json()) });
  cleanups.push(async () => statuses.unsubscribe());
  await deliver(`${jobId}-a7`, Date.now() - 300_000);
  await deliver(`${jobId}-a8`, Date.now());
  const statesOf = (attemptId: string) => reports.filter((r) => r.attemptId === attemptId).map((r) => r.state);
  await waitUntil(() => (statesOf(`${jobId}-a8`).includes('running') ? true : undefined), 30_000, () => `the fresh assignment did not start: ${JSON.stringify(statesOf(`${jobId}-a8`))}`);
  expect(statesOf(`${jobId}-a7`)).toEqual(['lost']);
  const attempts = parseHistory(readFileSync(history, 'utf8')).runs.map((r) => r.attemptId);
  expect(attempts).toContain(`${jobId}-a1`);
  expect(attempts).not.toContain(`${jobId}-a7`);
}, 120_000);
