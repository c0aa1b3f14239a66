import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Launcher, decodeWaitStatus, encodeRequest } from '../../agents/runners/launcher';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { waitUntil } from '../helpers/api';
import { runTask, withEmptyPath } from '../helpers/run-task';

test('a wait status gives an exit code or a signal, as Node reports them', () => {
  expect(decodeWaitStatus(0)).toEqual({ code: 0, signal: null });
  expect(decodeWaitStatus(3 << 8)).toEqual({ code: 3, signal: null });
  expect(decodeWaitStatus(9)).toEqual({ code: null, signal: 'SIGKILL' });
  expect(decodeWaitStatus(15 | 0x80)).toEqual({ code: null, signal: 'SIGTERM' }); // with a core dump
});

test('a request frame counts bytes, not characters, and refuses NUL bytes', () => {
  const frame = encodeRequest(7, { argv: ['echo', '青阳'], env: { A: 'b=c' }, logPath: '/l', cgroupProcs: [] });
  const nl = frame.indexOf(10);
  expect(Number(frame.subarray(0, nl).toString())).toBe(frame.length - nl - 1);
  expect(frame.subarray(nl + 1).toString().split('\0')).toEqual(['7', '', '/l', '0', '2', 'echo', '青阳', '1', 'A=b=c']);
  expect(() => encodeRequest(1, { argv: ['a\0b'], env: {}, logPath: '/l', cgroupProcs: [] })).toThrow(/NUL/);
});

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, …]. */
const statFields = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
const procState = (pid: number) => {
  try {
    return statFields(pid)[0];
  } catch {
    return 'gone';
  }
};

describe.skipIf(!Launcher.available())('the task launcher', () => {
  const launch = (launcher: Launcher, argv: string[], extra: { cwd?: string; cgroupProcs?: string[]; env?: Record<string, string> } = {}) => {
    const logPath = join(mkdtempSync(join(tmpdir(), 'qy-launch-')), 'task.log');
    let pid: number | undefined;
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
      launcher.launch(
        { argv, env: extra.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: extra.cwd, logPath, cgroupProcs: extra.cgroupProcs ?? [] },
        { onSpawn: (p) => (pid = p), onClose: (code, signal) => resolve({ code, signal }), onError: (err) => resolve(err) },
      );
    });
    return { done, logPath, pid: () => pid };
  };

  test('runs a task in its own process group with exactly the environment, directory and log it is given', async () => {
    const launcher = new Launcher();
    const cwd = mkdtempSync(join(tmpdir(), 'qy-cwd-'));
    const t = launch(launcher, ['/bin/sh', '-c', 'echo "pwd=$(pwd) x=$X path=$PATH"; env | wc -l; ps -o pgid= -p $$; echo $$; echo err >&2; exit 3'], { cwd, env: { PATH: '/usr/bin:/bin', X: 'v a=l' } });
    expect(await t.done).toEqual({ code: 3, signal: null });
    const lines = readFileSync(t.logPath, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`pwd=${cwd} x=v a=l path=/usr/bin:/bin`);
    expect(Number(lines[1])).toBeLessThanOrEqual(4); // X and PATH, and what sh sets itself (PWD, maybe SHLVL)
    expect(Number(lines[2])).toBe(t.pid()); // it leads its process group
    expect(Number(lines[3])).toBe(t.pid());
    expect(lines[4]).toBe('err');
    launcher.close();
  });

  test("a task inherits only stdin, stdout and stderr, none of the launcher's files", async () => {
    const launcher = new Launcher();
    const procs = join(mkdtempSync(join(tmpdir(), 'qy-procs-')), 'cgroup.procs');
    writeFileSync(procs, '');
    const t = launch(launcher, ['/bin/sh', '-c', 'ls /proc/$$/fd'], { cgroupProcs: [procs] });
    expect(await t.done).toEqual({ code: 0, signal: null });
    expect(readFileSync(t.logPath, 'utf8').trim().split('\n').map(Number).sort()).toEqual([0, 1, 2]);
    launcher.close();
  });

  test('many tasks at once are each reaped once, with their own status', async () => {
    const launcher = new Launcher();
    const tasks = Array.from({ length: 40 }, (_, i) => launch(launcher, ['/bin/sh', '-c', `exit ${i % 7}`]));
    const ends = await Promise.all(tasks.map((t) => t.done));
    expect(ends).toEqual(tasks.map((_, i) => ({ code: i % 7, signal: null })));
    launcher.close();
  });

  test('a signal to the process group ends the task, and is reported as the signal', async () => {
    const launcher = new Launcher();
    const t = launch(launcher, ['/bin/sh', '-c', 'sleep 30 & wait']);
    await waitUntil(() => t.pid(), 10_000, () => 'the task never got a pid');
    process.kill(-t.pid()!, 'SIGTERM');
    expect(await t.done).toEqual({ code: null, signal: 'SIGTERM' });
    launcher.close();
  });

  test('a log that cannot be opened is refused with the reason; a command that cannot be executed exits 127, a cgroup that cannot be joined 125, each with the reason in the log', async () => {
    const launcher = new Launcher();
    const missing = launch(launcher, ['/nonexistent/tool']);
    expect(await missing.done).toEqual({ code: 127, signal: null });
    expect(readFileSync(missing.logPath, 'utf8')).toMatch(/could not start \/nonexistent\/tool/);
    const procs = join(mkdtempSync(join(tmpdir(), 'qy-procs-')), 'missing-dir', 'cgroup.procs');
    // A log that cannot be opened: not started at all, with the reason.
    const nowhere = launch(launcher, ['true']);
    const unwritable = await new Promise<Error | { code: number | null }>((resolve) =>
      launcher.launch({ argv: ['true'], env: {}, logPath: join(procs, 'task.log'), cgroupProcs: [] }, { onSpawn: () => undefined, onClose: (code) => resolve({ code }), onError: resolve }),
    );
    expect(unwritable).toBeInstanceOf(Error);
    expect((unwritable as Error).message).toMatch(/^could not open its log .*missing-dir\/cgroup\.procs\/task\.log: No such file or directory$/);
    expect(await nowhere.done).toEqual({ code: 0, signal: null }); // the launcher goes on
    const unjoinable = launch(launcher, ['true'], { cgroupProcs: [procs] });
    expect(await unjoinable.done).toEqual({ code: 125, signal: null });
    expect(readFileSync(unjoinable.logPath, 'utf8')).toMatch(/could not join the cgroup/);
    // A writable "procs file" shows what the child writes there: its own pid, before it execs.
    const file = join(mkdtempSync(join(tmpdir(), 'qy-procs-')), 'cgroup.procs');
    writeFileSync(file, '');
    const joined = launch(launcher, ['true'], { cgroupProcs: [file] });
    expect(await joined.done).toEqual({ code: 0, signal: null });
    expect(readFileSync(file, 'utf8').trim()).toBe(String(joined.pid()));
    launcher.close();
  });

  test('when the launcher dies its tasks are killed and reported as errors; the next task gets a new launcher', async () => {
    const launcher = new Launcher();
    const t = launch(launcher, ['sleep', '30']);
    await waitUntil(() => t.pid(), 10_000, () => 'the task never got a pid');
    process.kill(launcher.pid!, 'SIGKILL');
    const end = await t.done;
    expect(end).toBeInstanceOf(Error);
    expect((end as Error).message).toMatch(/launcher exited/);
    // Killed with its group: gone, or a zombie where nothing reaps orphans.
    await waitUntil(() => (['gone', 'Z'].includes(procState(t.pid()!)) ? true : undefined), 10_000, () => `task ${t.pid()} is still ${procState(t.pid()!)}`);
    const next = launch(launcher, ['true']);
    expect(await next.done).toEqual({ code: 0, signal: null });
    launcher.close();
  });

  test('a task whose launcher dies is reported killed, not as never started', async () => {
    const t = runTask(new ProcessRunner(200, { isolation: null, start: 'launcher' }), ['sleep', '30']);
    await waitUntil(() => t.pid(), 10_000, () => 'the task never got a pid');
    // The runner's launcher is the task's parent.
    process.kill(Number(statFields(t.pid()!)[1]), 'SIGKILL');
    expect(await t.exit).toMatchObject({ state: 'failed', signal: 'SIGKILL', reason: expect.stringMatching(/^killed: the task launcher exited/) });
  });
});

describe.each(['launcher', 'spawn'] as const)('ProcessRunner starting tasks by %s', (start) => {
  const runner = new ProcessRunner(200, { isolation: null, start });

  test('exit codes, the log, and the task environment', async () => {
    const t = runTask(runner, ['sh', '-c', 'echo job=$QY_JOB_ID cpus=$QY_CPUS; exit 4'], { cpuMillis: 2000 });
    expect(await t.exit).toMatchObject({ state: 'failed', exitCode: 4, reason: 'exited with code 4' });
    expect(readFileSync(t.logPath, 'utf8')).toMatch(/^job=t\d+-\d+ cpus=2\n$/);
    expect(await runTask(runner, ['true']).exit).toMatchObject({ state: 'succeeded', exitCode: 0 });
  });

  test('a cancel that comes at once, before the process is known, still stops it', async () => {
    const t = runTask(runner, ['sleep', '30']);
    t.cancel(100, 'cancelled by the test');
    expect(await t.exit).toMatchObject({ state: 'cancelled', reason: 'cancelled by the test', signal: 'SIGTERM' });
  });

  test('walltime stops the task', async () => {
    expect(await runTask(runner, ['sleep', '30'], { walltimeMs: 50 }).exit).toMatchObject({ state: 'failed', reason: 'walltime of 50 ms exceeded' });
  });

  test('getting ready runs a test task, and says what keeps the node from running tasks', async () => {
    const fresh = new ProcessRunner(200, { isolation: null, start });
    expect(await fresh.prepare()).toBeUndefined();
    await fresh.close();
    const broken = new ProcessRunner(200, { isolation: null, start });
    try {
      expect(await withEmptyPath(() => broken.prepare())).toBe('a test task (`true`) failed: could not start true: not found');
    } finally {
      await broken.close();
    }
  });
});
