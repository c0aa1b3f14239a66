import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { startNatsServer } from '../../harness/nats-server';
import { waitUntil } from '../helpers/api';
import { spawnTs, startScheduler, testNode } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('an agent killed with -9 and restarted kills what it left running and reports it lost; the job runs again', async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  const s = await startScheduler(nats.url, { downAfterMs: 20_000, suspectAfterMs: 10_000 });
  cleanups.push(() => s.close());
  const dir = mkdtempSync(join(tmpdir(), 'qy-restart-'));
  const nodeFile = join(dir, 'node.json');
  writeFileSync(nodeFile, JSON.stringify(testNode('solo')));
  const agentArgs = ['--node-file', nodeFile, '--agent-id', 'solo', '--state-dir', join(dir, 'state')];
  const env = { QY_NATS_URL: nats.url, QY_LOG_LEVEL: 'warn' };
  const first = spawnTs('agents/main.ts', agentArgs, env);
  cleanups.push(() => first.kill9());
  await waitUntil(async () => ((await s.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length === 1 ? true : undefined), 20_000, first.output);

  const script = `echo $$ > ${dir}/pid-$QY_ATTEMPT_ID; if [ "$QY_ATTEMPT_ID" = "\${QY_JOB_ID}-a1" ]; then sleep 60; fi`;
  // A real agent enforces memory with cgroups where it can: the task asks for enough to run a shell.
  const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 64 * 1024 ** 2 }, command: ['sh', '-c', script] });
  await s.api.waitFor(id, ['running']);
  const pid = await waitUntil(() => Number(readFileSync(join(dir, `pid-${id}-a1`), 'utf8')) || undefined, 5_000);
  await first.kill9();
  expect(alive(pid)).toBe(true); // the task outlived its agent

  const second = spawnTs('agents/main.ts', agentArgs, env);
  cleanups.push(() => second.stop());
  const job = await s.api.waitFor(id, ['succeeded', 'failed'], 20_000);
  expect(job.state).toBe('succeeded');
  expect(job.attempts).toBe(2);
  expect(job.history[0]).toMatchObject({ outcome: 'requeued', reason: 'task 0 lost on solo: agent restarted while the task ran' });
  await waitUntil(() => (alive(pid) ? undefined : true), 5_000, () => `orphaned task ${pid} still running`);
});
