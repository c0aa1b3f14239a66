import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { Agent } from '../../agents/agent';
import { check, parseHistory } from '../../chaos/checker';
import { taskScript } from '../../chaos/workload';
import { startNatsServer } from '../../harness/nats-server';
import { startTcpProxy } from '../../harness/tcp-proxy';
import { waitUntil } from '../helpers/api';
import { startScheduler, testAgentOptions, testNode, waitForNodes } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

async function startAgent(agentId: string, natsUrl: string): Promise<Agent> {
  const agent = new Agent(testAgentOptions(natsUrl, agentId, [testNode(`${agentId}-node`)]));
  await agent.start();
  cleanups.push(() => agent.stop());
  return agent;
}

test('an agent cut off from NATS stops its tasks before its node is declared down: the rerun elsewhere never overlaps', async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  // A long down threshold: the agent fences at half of it, so a slow machine still leaves it seconds of margin.
  const s = await startScheduler(nats.url, { downAfterMs: '12000', suspectAfterMs: '3000' });
  cleanups.push(() => s.close());
  const link = await startTcpProxy({ port: nats.port });
  cleanups.push(() => link.close());
  await startAgent('cut', `nats://127.0.0.1:${link.port}`);
  await waitForNodes(s.operator, ['cut-node']);

  const history = join(mkdtempSync(join(tmpdir(), 'qy-fence-history-')), 'history.log');
  writeFileSync(history, '');
  // 15 s of work, a tick every half second.
  const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 1000, memBytes: 1024 ** 2 }, command: ['bash', '-c', taskScript(history, 30)] });
  await waitUntil(() => (parseHistory(readFileSync(history, 'utf8')).runs.length === 1 ? true : undefined), 20_000, () => 'the task did not start');
  await startAgent('spare', nats.url);
  await waitForNodes(s.operator, ['spare-node']);

  link.cut();
  // The node goes down and the job runs again on the spare node.
  const done = await s.api.waitFor(id, ['succeeded', 'failed'], 90_000);
  expect(done.state).toBe('succeeded');
  expect(done.attemptId).toBe(`${id}-a2`);
  link.heal();
  // The fenced run's exit reaches the scheduler once the link is back: reported lost, not succeeded.
  await waitUntil(async () => ((await s.api.job(id)).history.length >= 1 ? true : undefined), 20_000);

  const parsed = parseHistory(readFileSync(history, 'utf8'));
  const [first, second] = [...parsed.runs].sort((a, b) => a.startMs - b.startMs);
  expect(first.attemptId).toBe(`${id}-a1`);
  expect(first.endMs).toBeUndefined(); // stopped, not finished
  expect(second.attemptId).toBe(`${id}-a2`);
  expect(first.lastSeenMs).toBeLessThan(second.startMs);
  const result = check({ history: parsed, acks: [{ idempotencyKey: 'k', jobId: id }], finalJobs: new Map([[id, { id, state: done.state, tasks: 1, attemptId: done.attemptId }]]), metered: [], auditOk: true });
  expect(result).toMatchObject({ lost: 0, duplicateStarts: 0, overlaps: 0 });
}, 180_000);
