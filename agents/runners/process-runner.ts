import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { taskEnv, type TaskContext, type TaskExit, type TaskHandle, type TaskRunner } from './types';

/** Variables of the agent's own environment that tasks inherit; everything else (credentials) stays out. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR'];
/** What a sandboxed task inherits: a search path and a locale, nothing that names the agent's user or home. */
const SANDBOX_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ'];

/**
 * Runs a task as a child process in its own process group, without a shell, output appended to its log
 * file. Walltime and cancel stop the whole group: SIGTERM, then SIGKILL after the grace period.
 */
export class ProcessRunner implements TaskRunner {
  readonly kind = 'process';

  constructor(private readonly killGraceMs: number) {}

  start(ctx: TaskContext): TaskHandle {
    const command = ctx.assignment.command;
    if (!command || command.length === 0) {
      setImmediate(() => ctx.onExit({ state: 'failed', exitCode: 127, reason: 'the job has no command to run' }));
      return { cancel: () => undefined };
    }
    mkdirSync(dirname(ctx.logPath), { recursive: true });
    const fd = openSync(ctx.logPath, 'a');
    const env: Record<string, string> = {};
    for (const name of ctx.assignment.sandbox ? SANDBOX_ENV : INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    // A sandboxed task gets a private home (also its working and temporary directory), removed when it ends.
    const home = ctx.assignment.sandbox ? mkdtempSync(join(tmpdir(), 'qy-sandbox-')) : undefined;
    if (home) {
      mkdirSync(join(home, 'tmp'), { mode: 0o700 });
      Object.assign(env, { HOME: home, TMPDIR: join(home, 'tmp') });
    }
    let done = false;
    let cancelReason: string | undefined;
    let walltimeExceeded = false;
    let killTimer: NodeJS.Timeout | undefined;
    let walltimeTimer: NodeJS.Timeout | undefined;
    const finish = (exit: TaskExit) => {
      if (done) return;
      done = true;
      clearTimeout(killTimer);
      clearTimeout(walltimeTimer);
      if (home) rmSync(home, { recursive: true, force: true });
      ctx.onExit(exit);
    };
    const child = spawn(command[0], command.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: { ...env, ...taskEnv(ctx), ...(home ? { HOME: home, TMPDIR: join(home, 'tmp') } : {}) }, cwd: home });
    closeSync(fd);
    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const stop = (graceMs: number) => {
      signalGroup('SIGTERM');
      clearTimeout(killTimer);
      killTimer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
    };
    child.on('error', (err) => finish({ state: 'failed', exitCode: 127, reason: `could not start ${command[0]}: ${err.message}` }));
    child.on('close', (code, signal) => {
      if (cancelReason !== undefined) finish({ state: 'cancelled', exitCode: code ?? undefined, signal: signal ?? undefined, reason: cancelReason });
      else if (walltimeExceeded) finish({ state: 'failed', exitCode: code ?? undefined, signal: signal ?? undefined, reason: `walltime of ${ctx.assignment.walltimeMs} ms exceeded` });
      else if (code === 0) finish({ state: 'succeeded', exitCode: 0 });
      else finish({ state: 'failed', exitCode: code ?? undefined, signal: signal ?? undefined, reason: signal ? `killed by ${signal}` : `exited with code ${code}` });
    });
    if (ctx.assignment.walltimeMs !== undefined) {
      walltimeTimer = setTimeout(() => {
        walltimeExceeded = true;
        stop(this.killGraceMs);
      }, ctx.assignment.walltimeMs);
    }
    return {
      pid: child.pid,
      cancel(graceMs: number, reason: string) {
        if (done) return;
        cancelReason = reason;
        stop(graceMs);
      },
    };
  }

  async readLog(logPath: string, maxBytes: number): Promise<{ text: string; truncated: boolean } | undefined> {
    let size: number;
    try {
      size = (await stat(logPath)).size;
    } catch {
      return undefined;
    }
    const start = Math.max(0, size - maxBytes);
    const fh = await open(logPath, 'r');
    try {
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return { text: buf.toString('utf8'), truncated: start > 0 };
    } finally {
      await fh.close();
    }
  }
}
