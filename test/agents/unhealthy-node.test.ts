import { afterAll, expect, test } from 'vitest';
import { Agent } from '../../agents/agent';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { startNatsServer } from '../../harness/nats-server';
import { SchedulerApiError } from '../../src/client';
import type { NodeView } from '../../src/protocol';
import { withEmptyPath } from '../helpers/run-task';
import { startScheduler, testAgentOptions, testNode, waitForNodes } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

test('a node whose agent cannot run its test task at start registers tainted, says why, and gets no work', async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  const s = await startScheduler(nats.url);
  cleanups.push(() => s.close());
  const agent = new Agent(
    testAgentOptions(nats.url, 'sick', [testNode('sick-node')], {
      runner: new ProcessRunner(1_000, { isolation: null }),
      enforcement: { cgroups: 'none', reason: 'not in this test', isolation: 'none' },
    }),
  );
  // The test task runs as the agent starts: with `true` in none of PATH's directories, it cannot start.
  await withEmptyPath(() => agent.start());
  cleanups.push(() => agent.stop());
  await waitForNodes(s.operator, ['sick-node']);

  const view = await s.operator.request<NodeView>('GET', '/v1/nodes/sick-node');
  expect(view.status).toBe(200);
  expect(view.body.enforcement?.testTask).toBe('a test task (`true`) failed: could not start true: not found');
  // Its only pool member is tainted: a job that does not tolerate the taint cannot be placed anywhere.
  const refused = await s.api.submit({ pool: 'general', resources: { cpuMillis: 1000, memBytes: 2 ** 28 }, command: ['true'] }).catch((err: unknown) => err);
  expect(refused).toBeInstanceOf(SchedulerApiError);
  expect((refused as SchedulerApiError).message).toMatch(/untolerated taint/);
}, 60_000);
