import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { Agent } from '../../agents/agent';
import { TaskLogs, type TaskLogLimits } from '../../agents/task-logs';
import { startNatsServer } from '../../harness/nats-server';
import { waitUntil } from '../helpers/api';
import { startScheduler, testAgentOptions, testNode, waitForNodes } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qy-task-logs-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a task's life as the agent does: a log path, output written to it, the task's end. */
function runTask(logs: TaskLogs, attemptId: string, output: string): string {
  const path = logs.pathFor(attemptId, 0);
  writeFileSync(path, output, { flag: 'a' });
  logs.taskEnded(path);
  return path;
}

describe('task logs stay bounded on the node', () => {
  test('at most `keep` logs of ended tasks; a new task reuses the oldest file, emptied, under its own name', () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { keep: 3, reuseFiles: true });
    logs.open();
    const first = runTask(logs, 'job-1-a1', 'output of job 1\n');
    const firstInode = statSync(first).ino;
    for (const n of [2, 3]) runTask(logs, `job-${n}-a1`, `output of job ${n}\n`);
    expect(readdirSync(dir).sort()).toEqual(['job-1-a1-0.log', 'job-2-a1-0.log', 'job-3-a1-0.log']);

    const fourth = logs.pathFor('job-4-a1', 0);
    expect(existsSync(first)).toBe(false);
    // The same file, renamed and emptied before the task writes to it: nothing of job 1 shows in job 4's log.
    expect(statSync(fourth).ino).toBe(firstInode);
    expect(readFileSync(fourth, 'utf8')).toBe('');
    writeFileSync(fourth, 'output of job 4\n', { flag: 'a' });
    logs.taskEnded(fourth);
    expect(readdirSync(dir).sort()).toEqual(['job-2-a1-0.log', 'job-3-a1-0.log', 'job-4-a1-0.log']);

    for (let n = 5; n <= 50; n++) runTask(logs, `job-${n}-a1`, `output of job ${n}\n`);
    expect(readdirSync(dir).sort()).toEqual(['job-48-a1-0.log', 'job-49-a1-0.log', 'job-50-a1-0.log']);
    expect(readFileSync(join(dir, 'job-50-a1-0.log'), 'utf8')).toBe('output of job 50\n');
    expect(logs.endedCount).toBe(3);
  });

  test('a log being read is neither reused nor removed until the read is done', async () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { keep: 2, reuseFiles: true });
    logs.open();
    const oldest = runTask(logs, 'old-a1', 'old output\n');
    runTask(logs, 'mid-a1', 'mid output\n');
    let release!: () => void;
    const reading = logs.read(oldest, () => new Promise<string>((r) => (release = () => r(readFileSync(oldest, 'utf8')))));

    runTask(logs, 'new-a1', 'new output\n');
    // The oldest is being read: the next oldest was reused instead.
    expect(readFileSync(oldest, 'utf8')).toBe('old output\n');
    expect(existsSync(join(dir, 'mid-a1-0.log'))).toBe(false);
    release();
    expect(await reading).toBe('old output\n');

    runTask(logs, 'newer-a1', 'newer output\n');
    expect(readdirSync(dir).sort()).toEqual(['new-a1-0.log', 'newer-a1-0.log']);
  });

  test('open takes an earlier run\'s logs oldest first (by modification time) and removes those past `keep`', () => {
    const dir = tempDir();
    const t0 = Date.now() / 1000 - 3_600;
    // Names out of time order: b is the oldest, then c, then a.
    for (const [name, age] of [['a', 10], ['b', 30], ['c', 20]] as const) {
      const path = join(dir, `${name}-a1-0.log`);
      writeFileSync(path, name);
      utimesSync(path, t0 - age, t0 - age);
    }
    writeFileSync(join(dir, 'notes.txt'), 'not a task log');
    const logs = new TaskLogs(dir, { keep: 2, reuseFiles: true });
    expect(logs.open()).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['a-a1-0.log', 'c-a1-0.log', 'notes.txt']);
    // Next to go is c, then a.
    runTask(logs, 'd-a1', 'd');
    expect(readdirSync(dir).sort()).toEqual(['a-a1-0.log', 'd-a1-0.log', 'notes.txt']);
  });

  test('at most `maxBytes` of ended logs: the oldest go first', () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { keep: 100, maxBytes: 25 });
    logs.open();
    for (const n of [1, 2]) runTask(logs, `job-${n}-a1`, `0123456789`);
    expect(logs.endedSize).toBe(20);
    runTask(logs, 'job-3-a1', '0123456789');
    expect(readdirSync(dir).sort()).toEqual(['job-2-a1-0.log', 'job-3-a1-0.log']);
    expect(logs.endedSize).toBe(20);
  });

  test("a running task's log past `maxTaskBytes` loses its earlier output, with a line saying so; what the task writes next follows", () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { maxTaskBytes: 1024 });
    logs.open();
    const path = logs.pathFor('loud-a1', 0);
    expect(logs.capRunning(path)).toBe(false); // nothing written yet
    writeFileSync(path, 'x'.repeat(1024), { flag: 'a' });
    expect(logs.capRunning(path)).toBe(false); // at the cap, not past it
    writeFileSync(path, 'y'.repeat(1000), { flag: 'a' });
    expect(logs.capRunning(path)).toBe(true);
    writeFileSync(path, 'after\n', { flag: 'a' });
    expect(readFileSync(path, 'utf8')).toBe("[qy-agent] this task's output passed 1024 bytes (QY_TASK_LOG_MAX_BYTES): 2024 bytes before this line were dropped\nafter\n");
  });

  test('without reuseFiles (no cgroups), a new log is a new file: a process that outlived its task writes nowhere another task reads', () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { keep: 1 });
    logs.open();
    const first = runTask(logs, 'first-a1', 'first\n');
    const orphan = openSync(first, 'a'); // a process of the first task still holding its log
    try {
      const second = logs.pathFor('second-a1', 0);
      expect(existsSync(first)).toBe(true); // not taken over
      writeFileSync(second, 'second\n', { flag: 'a' });
      logs.taskEnded(second);
      expect(readdirSync(dir)).toEqual(['second-a1-0.log']);
      writeSync(orphan, 'stray output\n');
      expect(readFileSync(second, 'utf8')).toBe('second\n');
    } finally {
      closeSync(orphan);
    }
  });

  test('keep 0: a log goes when its task ends', () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { keep: 0 });
    logs.open();
    const path = logs.pathFor('only-a1', 0);
    writeFileSync(path, 'x');
    expect(existsSync(path)).toBe(true);
    logs.taskEnded(path);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a task that never wrote its log (it failed to start) leaves nothing to reuse, and the next log is made anew', () => {
    const dir = tempDir();
    const logs = new TaskLogs(dir, { keep: 1, reuseFiles: true });
    logs.open();
    logs.taskEnded(logs.pathFor('never-a1', 0)); // no file
    const next = runTask(logs, 'next-a1', 'next\n');
    expect(readFileSync(next, 'utf8')).toBe('next\n');
    expect(readdirSync(dir)).toEqual(['next-a1-0.log']);
  });
});

/** NATS, a scheduler and a real agent of one node, whose task logs have these limits; stopped after the file. */
async function agentWithLogLimits(agentId: string, taskLogs: TaskLogLimits) {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  const s = await startScheduler(nats.url);
  cleanups.push(() => s.close());
  const options = testAgentOptions(nats.url, agentId, [testNode(`${agentId}-1`)], { taskLogs });
  const agent = new Agent(options);
  cleanups.push(() => agent.stop());
  await agent.start();
  await waitForNodes(s.operator, [`${agentId}-1`]);
  return { s, stateDir: options.stateDir };
}

test('a real agent keeps QY_TASK_LOGS_KEEP logs: the newest are readable through the API, the oldest are gone', async () => {
  const { s, stateDir } = await agentWithLogLimits('logs', { keep: 2 });

  const ids: string[] = [];
  for (let n = 1; n <= 4; n++) {
    const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 64 * 1024 ** 2 }, command: ['sh', '-c', `echo output of job ${n}`] });
    expect((await s.api.waitFor(id, ['succeeded', 'failed'])).state).toBe('succeeded');
    ids.push(id);
  }
  expect(readdirSync(join(stateDir, 'logs')).sort()).toEqual(ids.slice(2).map((id) => `${id}-a1-0.log`).sort());
  for (const [i, id] of ids.entries()) {
    const log = await s.api.request<{ text?: string; code?: string }>('GET', `/v1/jobs/${id}/log`);
    if (i < 2) expect(log.body.code).toBe('QY_ERR_LOG_UNAVAILABLE');
    else expect(log.body.text).toBe(`output of job ${i + 1}\n`);
  }
});

test("a real agent drops the earlier output of a task printing past QY_TASK_LOG_MAX_BYTES, and the task goes on", async () => {
  const { s } = await agentWithLogLimits('loud', { maxTaskBytes: 4096 });
  // The task prints 100 kB, says so, then waits for the test's flag before its last line.
  const folder = tempDir();
  const [printed, flag] = [join(folder, 'printed'), join(folder, 'go-on')];
  const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 64 * 1024 ** 2 }, command: ['sh', '-c', `head -c 100000 /dev/zero | tr '\\0' x; echo; touch ${printed}; while [ ! -e ${flag} ]; do sleep 0.05; done; echo last`] });
  const log = () => s.api.request<{ text?: string }>('GET', `/v1/jobs/${id}/log`).then((r) => r.body.text ?? '');
  // Capped at a heartbeat, and again at the next ones while more than the cap came after it; then it stays.
  await waitUntil(async () => {
    const text = await log();
    return existsSync(printed) && text.startsWith("[qy-agent] this task's output passed 4096 bytes") && text.length <= 4096 ? true : undefined;
  }, 20_000, () => 'the output was never capped');
  writeFileSync(flag, '');
  expect((await s.api.waitFor(id, ['succeeded', 'failed'])).state).toBe('succeeded');
  const text = await log();
  expect(text).toMatch(/^\[qy-agent\] this task's output passed 4096 bytes \(QY_TASK_LOG_MAX_BYTES\): \d+ bytes before this line were dropped\n(x*\n)?last\n$/);
  expect(text.length).toBeLessThanOrEqual(4096 + 5);
});
