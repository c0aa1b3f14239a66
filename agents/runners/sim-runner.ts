import type { TaskContext, TaskExit, TaskHandle, TaskRunner } from './types';

/** Logs of simulated tasks kept in memory (the oldest are dropped). */
const MAX_LOGS = 10_000;

/**
 * A simulated task: sleeps for the job's declared duration (durationSeconds, else a default) and exits
 * with QY_SIM_EXIT_CODE from the job's env (0 when unset). Walltime and cancel behave as for processes.
 */
export class SimRunner implements TaskRunner {
  readonly kind = 'simulated';
  private readonly logs = new Map<string, string>();

  constructor(private readonly defaultDurationMs: number) {}

  start(ctx: TaskContext): TaskHandle {
    const { assignment, task } = ctx;
    const durationMs = assignment.durationMs ?? this.defaultDurationMs;
    const exitCode = Number(assignment.env?.QY_SIM_EXIT_CODE ?? 0) | 0;
    let done = false;
    const finish = (exit: TaskExit) => {
      if (done) return;
      done = true;
      clearTimeout(runTimer);
      clearTimeout(walltimeTimer);
      this.remember(ctx.logPath, `[simulated] ${ctx.nodeId}: task ${task.taskIndex} of ${assignment.jobId} (${assignment.attemptId}) ${exit.state}${exit.reason ? `: ${exit.reason}` : ''} after ${Date.now() - startedMs} ms\n`);
      ctx.onExit(exit);
    };
    const startedMs = Date.now();
    const runTimer = setTimeout(() => finish(exitCode === 0 ? { state: 'succeeded', exitCode: 0 } : { state: 'failed', exitCode, reason: `exited with code ${exitCode}` }), durationMs);
    const walltimeTimer =
      assignment.walltimeMs !== undefined && assignment.walltimeMs < durationMs
        ? setTimeout(() => finish({ state: 'failed', signal: 'SIGTERM', reason: `walltime of ${assignment.walltimeMs} ms exceeded` }), assignment.walltimeMs)
        : undefined;
    return {
      cancel: (_graceMs: number, reason: string) => setImmediate(() => finish({ state: 'cancelled', signal: 'SIGTERM', reason })),
    };
  }

  async readLog(logPath: string, maxBytes: number): Promise<{ text: string; truncated: boolean } | undefined> {
    const text = this.logs.get(logPath);
    if (text === undefined) return undefined;
    return { text: text.slice(-maxBytes), truncated: text.length > maxBytes };
  }

  private remember(logPath: string, text: string): void {
    this.logs.set(logPath, text);
    if (this.logs.size > MAX_LOGS) this.logs.delete(this.logs.keys().next().value!);
  }
}
