import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskExit, TaskRunner } from '../../agents/runners/types';
import type { Assignment, DataClass } from '../../src/protocol';

let seq = 0;

/** Runs one task through a runner, as the agent would, and resolves with how it ended. */
export function runTask(
  runner: TaskRunner,
  command: string[],
  options: { cpuMillis?: number; memBytes?: number; sandbox?: boolean; dataClass?: DataClass; walltimeMs?: number; env?: Record<string, string>; jobId?: string } = {},
): { exit: Promise<TaskExit>; key: string; logPath: string; pid(): number | undefined; cancel(graceMs: number, reason: string): void } {
  const jobId = options.jobId ?? `t${process.pid}-${++seq}`;
  const attemptId = `${jobId}-a1`;
  const task = { taskIndex: 0, nodeId: 'n1', cpuMillis: options.cpuMillis ?? 1000, memBytes: options.memBytes ?? 256 * 1024 ** 2, gpuIndices: [], gpuMilliEach: 0, extended: {} };
  const assignment: Assignment = {
    type: 'assign',
    jobId,
    attemptId,
    nodeId: 'n1',
    tenant: 'city-a',
    tasks: [task],
    hosts: ['n1'],
    command,
    env: options.env,
    walltimeMs: options.walltimeMs,
    dataClass: options.dataClass ?? 'public',
    sandbox: options.sandbox ?? false,
    atMs: Date.now(),
  };
  const logPath = join(mkdtempSync(join(tmpdir(), 'qy-task-log-')), 'task.log');
  const key = `${attemptId}/0`;
  let handle: { cancel(graceMs: number, reason: string): void } | undefined;
  let pid: number | undefined;
  const exit = new Promise<TaskExit>((resolve) => {
    handle = runner.start({ key, assignment, task, nodeId: 'n1', logPath, onPid: (p) => (pid = p), onExit: resolve });
  });
  return { exit, key, logPath, pid: () => pid, cancel: (g, r) => handle!.cancel(g, r) };
}

/**
 * Runs `fn` with PATH set to an empty directory, so no command is found on it (`true` included): how a
 * test makes the agent's test task fail. PATH is put back afterwards, whatever happens.
 */
export async function withEmptyPath<T>(fn: () => Promise<T>): Promise<T> {
  const path = process.env.PATH;
  process.env.PATH = mkdtempSync(join(tmpdir(), 'qy-empty-path-'));
  try {
    return await fn();
  } finally {
    process.env.PATH = path;
  }
}
