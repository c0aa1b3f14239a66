import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';

/**
 * Starts tasks through a small long-lived Perl process (launcher.pl) instead of forking the agent.
 *
 * Why: a spawn from Node.js forks a process of about 100 MB, and `perf` put most of an agent's CPU per
 * short task in the kernel copying its page tables and tearing the copy down at exec. Forking a
 * few-MB Perl process instead costs a small fraction of that; the launcher opens the log and the
 * cgroup.procs files before it forks and the child joins the cgroup itself, so no shell wrapper is exec'd
 * first (`npm run bench:launcher` measures both ways). The agent keeps signalling process groups and
 * cgroups itself; the launcher only forks, execs and reaps.
 */

/** Where Perl is (perl-base is Essential on Debian); the launcher is not used without it. */
const PERL = ['/usr/bin/perl', '/bin/perl'].find((p) => existsSync(p));
const SCRIPT = fileURLToPath(new URL('./launcher.pl', import.meta.url));

/** What a task needs to start. */
export interface LaunchRequest {
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  /** Its stdout and stderr are appended here (the file is created). */
  logPath: string;
  /** cgroup.procs files the task joins before it execs. */
  cgroupProcs: string[];
}

/** What the launcher says of a task. */
export interface LaunchEvents {
  /** Forked: `pid` leads the task's process group, which exists by then. */
  onSpawn(pid: number): void;
  /** Reaped: an exit code, or the signal that ended it. */
  onClose(code: number | null, signal: NodeJS.Signals | null): void;
  /** It could not be started, or the launcher went away before it was reaped. */
  onError(err: Error): void;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** Splits a wait(2) status into an exit code or a signal, as Node's 'close' event gives them. */
export function decodeWaitStatus(status: number): { code: number | null; signal: NodeJS.Signals | null } {
  const signal = status & 0x7f;
  if (signal === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: SIGNAL_NAMES.get(signal) ?? 'SIGKILL' };
}

/** One request as the launcher reads it: "<bytes>\n" then NUL-separated fields. */
export function encodeRequest(id: number, req: LaunchRequest): Buffer {
  const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`);
  const fields = [String(id), req.cwd ?? '', req.logPath, String(req.cgroupProcs.length), ...req.cgroupProcs, String(req.argv.length), ...req.argv, String(env.length), ...env];
  for (const f of fields) if (f.includes('\0')) throw new Error('a task argument or variable contains a NUL byte');
  const payload = Buffer.from(fields.join('\0'));
  return Buffer.concat([Buffer.from(`${payload.length}\n`), payload]);
}

/** A launcher process and the tasks it has under way. Started by `start` or on first use; started again if it dies. */
export class Launcher {
  /** Whether this machine can run the launcher (it has Perl). */
  static available(): boolean {
    return PERL !== undefined;
  }

  private proc: ChildProcessByStdio<Writable, Readable, null> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { events: LaunchEvents; pid?: number }>();
  private readBuf = '';

  /** Starts the launcher process now rather than at the first task (an agent's first tasks then start sooner). */
  start(): void {
    this.proc ??= this.startProcess();
  }

  launch(req: LaunchRequest, events: LaunchEvents): void {
    const proc = this.proc ?? this.startProcess();
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeRequest(id, req);
    } catch (err) {
      setImmediate(() => events.onError(err as Error));
      return;
    }
    this.pending.set(id, { events });
    proc.stdin.write(frame);
  }

  /** The launcher process's pid, once started. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Ends the launcher (tasks it started keep running, as they would after an agent crash). */
  close(): void {
    const proc = this.proc;
    this.proc = undefined;
    this.pending.clear();
    proc?.stdin.end();
  }

  private startProcess(): ChildProcessByStdio<Writable, Readable, null> {
    if (!PERL) throw new Error('no perl for the task launcher');
    const proc = spawn(PERL, [SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
    this.proc = proc;
    proc.stdin.on('error', () => undefined); // its exit is handled below
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => this.onData(chunk));
    proc.on('error', (err) => this.lost(proc, err));
    // 'close' comes after its last output was read, so every exit it reported has been handled.
    proc.on('close', (code, signal) => this.lost(proc, new Error(`the task launcher exited (${signal ?? `code ${code}`})`)));
    // Not a reason to keep the agent alive by itself.
    proc.unref();
    (proc.stdin as unknown as { unref?: () => void }).unref?.();
    (proc.stdout as unknown as { unref?: () => void }).unref?.();
    return proc;
  }

  private onData(chunk: string): void {
    this.readBuf += chunk;
    let nl: number;
    while ((nl = this.readBuf.indexOf('\n')) >= 0) {
      const line = this.readBuf.slice(0, nl);
      this.readBuf = this.readBuf.slice(nl + 1);
      const [kind, idText, a, b] = line.split(' ');
      const id = Number(idText);
      const task = this.pending.get(id);
      if (!task) continue;
      if (kind === 'P') {
        task.pid = Number(a);
        task.events.onSpawn(task.pid);
      } else if (kind === 'X') {
        this.pending.delete(id);
        const { code, signal } = decodeWaitStatus(Number(b));
        task.events.onClose(code, signal);
      } else if (kind === 'F') {
        this.pending.delete(id);
        task.events.onError(new Error(line.slice(kind.length + idText.length + 2)));
      }
    }
  }

  /**
   * The launcher died: its tasks can no longer be reaped, so they are killed (their process groups) and
   * reported as errors; the next launch starts a new launcher.
   */
  private lost(proc: ChildProcessByStdio<Writable, Readable, null>, err: Error): void {
    if (this.proc !== proc) return; // closed on purpose, or already handled
    this.proc = undefined;
    this.readBuf = '';
    const tasks = [...this.pending.values()];
    this.pending.clear();
    for (const task of tasks) {
      if (task.pid !== undefined) {
        try {
          process.kill(-task.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      task.events.onError(err);
    }
  }
}
