import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Assignment, MeasuredUsage, TaskPlacement } from '../../src/protocol';
import type { CgroupManager, TaskCgroup } from '../cgroups';
import { CommandCache, NETWORK_ALLOWED, detectIsolation, isolatedArgv, needsIsolation, type Isolation } from '../sandbox';
import { Launcher, type LaunchEvents, type LaunchRequest } from './launcher';
import { taskEnv, type TaskContext, type TaskExit, type TaskHandle, type TaskRunner } from './types';

/** Joins the cgroup (pid into each cgroup.procs file given) before anything of the task runs, then execs it. */
const JOIN_CGROUP = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';
/** The wrapper's exit code when the task could not join its cgroup. */
const JOIN_FAILED = 125;

export interface ProcessRunnerOptions {
  /** Per-task cgroups; tasks run without limits when absent (the agent says so at registration). */
  cgroups?: CgroupManager;
  /** Namespaces for sandbox and restricted tasks; detected once when undefined, none when null. */
  isolation?: Isolation | null;
  /** Processes a task may have at once (its cgroup's pids limit). */
  pidsMax?: number;
  /**
   * How tasks are started: through the Perl launcher (`launcher`, the default where Perl is installed) or
   * by forking the agent (`spawn`).
   */
  start?: 'launcher' | 'spawn';
  /**
   * Folder of the private homes of sandbox and restricted tasks, this agent's alone: emptied when the agent
   * starts (the homes of tasks a crashed agent left). Without it, each home is a new folder in the system's
   * temporary folder, and a crash leaves it there.
   */
  sandboxRoot?: string;
}

/** Starts a task by forking the agent (where there is no launcher): the cgroup is joined by a shell first. */
export function spawnTask(req: LaunchRequest, events: LaunchEvents): void {
  const argv = req.cgroupProcs.length > 0 ? ['/bin/sh', '-c', JOIN_CGROUP, 'qy-task', String(req.cgroupProcs.length), ...req.cgroupProcs, ...req.argv] : req.argv;
  const fd = openSync(req.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: req.env, cwd: req.cwd });
  } finally {
    closeSync(fd);
  }
  child.on('error', (err) => events.onError(err));
  child.on('close', (code, signal) => events.onClose(code, signal));
  if (child.pid !== undefined) events.onSpawn(child.pid);
}

let detectedIsolation: { isolation?: Isolation; reason?: string } | undefined;

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

  private readonly isolation: Isolation | undefined;
  private readonly isolationReason: string | undefined;
  private readonly launcher: Launcher | undefined;
  private readonly commands = new CommandCache();

  constructor(
    private readonly killGraceMs: number,
    private readonly options: ProcessRunnerOptions = {},
  ) {
    this.launcher = (options.start ?? (Launcher.available() ? 'launcher' : 'spawn')) === 'launcher' ? new Launcher() : undefined;
    if (options.isolation === undefined) {
      if (!detectedIsolation) {
        const d = detectIsolation();
        detectedIsolation = { isolation: d.isolation, reason: d.enforcement.isolationReason };
      }
      this.isolation = detectedIsolation.isolation;
      this.isolationReason = detectedIsolation.reason;
    } else {
      this.isolation = options.isolation ?? undefined;
      this.isolationReason = options.isolation ? undefined : 'isolation is off';
    }
  }

  start(ctx: TaskContext): TaskHandle {
    const { assignment, task } = ctx;
    const command = assignment.command;
    const failNow = (exitCode: number, reason: string): TaskHandle => {
      setImmediate(() => ctx.onExit({ state: 'failed', exitCode, reason }));
      return { cancel: () => undefined };
    };
    if (!command || command.length === 0) return failNow(127, 'the job has no command to run');
    // Sandbox tasks and restricted data run in namespaces, or not at all: never unisolated.
    const isolated = needsIsolation(assignment.sandbox, assignment.dataClass);
    if (isolated && !this.isolation) return failNow(126, `this node cannot isolate sandbox and restricted tasks: ${this.isolationReason ?? 'no isolation'}`);
    const env: Record<string, string> = {};
    for (const name of isolated ? SANDBOX_ENV : INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    const resolved = this.commands.resolve(command[0], env.PATH);
    if (!resolved) return failNow(127, `could not start ${command[0]}: not found`);
    /** Made before the task starts (off the event loop); undefined until then, and without cgroups. */
    let cgroup: TaskCgroup | undefined;
    // An isolated task gets a private home (also its working and temporary directory), removed when it ends.
    const home = isolated ? this.newHome() : undefined;
    if (home) {
      mkdirSync(join(home, 'tmp'), { mode: 0o700 });
      if (this.isolation?.setpriv) for (const dir of [home, join(home, 'tmp')]) chownSync(dir, this.isolation.uid, this.isolation.gid);
      Object.assign(env, { HOME: home, TMPDIR: join(home, 'tmp') });
    }
    const argv = home && this.isolation ? isolatedArgv(this.isolation, { home, network: NETWORK_ALLOWED[assignment.dataClass], gpuIndices: task.gpuIndices }, command) : command;
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
      // What the cgroup counted, read before it goes; what is left in it is killed with it.
      let measured: MeasuredUsage | undefined;
      let oom = false;
      if (cgroup) {
        measured = cgroup.usage();
        oom = cgroup.oomKilled();
      }
      if (oom && exit.state === 'failed' && cgroup?.memLimitBytes !== undefined) exit = { ...exit, reason: `out of memory (limit ${+(cgroup.memLimitBytes / 1024 ** 2).toFixed(3)} MiB)` };
      else if (cgroup && exit.state === 'failed' && exit.exitCode === JOIN_FAILED) exit = { ...exit, reason: "could not put the task into its cgroup (see its log)" };
      const cleanup = cgroup ? cgroup.remove() : Promise.resolve();
      void cleanup.finally(() => {
        if (home) rmSync(home, { recursive: true, force: true });
        ctx.onExit(measured ? { ...exit, measured } : exit);
      });
    };
    let pid: number | undefined;
    /** A stop asked for before the launcher said which process it is: sent as soon as it does. */
    let pendingSignal: NodeJS.Signals | undefined;
    const signalGroup = (signal: NodeJS.Signals) => {
      // The cgroup holds every process of the task, also those that left its process group.
      cgroup?.signalAll(signal);
      if (pid === undefined) {
        pendingSignal = signal;
        return;
      }
      try {
        process.kill(-pid, signal);
      } catch {
        // already gone
      }
    };
    const stop = (graceMs: number) => {
      signalGroup('SIGTERM');
      clearTimeout(killTimer);
      killTimer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
    };
    const events: LaunchEvents = {
      onSpawn: (p) => {
        pid = p;
        ctx.onPid?.(p);
        if (pendingSignal) signalGroup(pendingSignal);
      },
      // Before a pid it could not be started; after, it was killed because its launcher died.
      onError: (err) => finish(pid === undefined ? { state: 'failed', exitCode: 127, reason: `could not start ${command[0]}: ${err.message}` } : { state: 'failed', signal: 'SIGKILL', reason: `killed: ${err.message}` }),
      onClose: (code, signal) => {
        if (cancelReason !== undefined) finish({ state: 'cancelled', exitCode: code ?? undefined, signal: signal ?? undefined, reason: cancelReason });
        else if (walltimeExceeded) finish({ state: 'failed', exitCode: code ?? undefined, signal: signal ?? undefined, reason: `walltime of ${ctx.assignment.walltimeMs} ms exceeded` });
        else if (code === 0) finish({ state: 'succeeded', exitCode: 0 });
        else finish({ state: 'failed', exitCode: code ?? undefined, signal: signal ?? undefined, reason: signal ? `killed by ${signal}` : `exited with code ${code}` });
      },
    };
    mkdirSync(dirname(ctx.logPath), { recursive: true });
    const request: LaunchRequest = { argv, env: { ...env, ...taskEnv(ctx), ...(home ? { HOME: home, TMPDIR: join(home, 'tmp') } : {}) }, cwd: home, logPath: ctx.logPath, cgroupProcs: [] };
    let launched = false;
    const launch = () => {
      launched = true;
      const req = cgroup ? { ...request, cgroupProcs: cgroup.procsFiles } : request;
      try {
        if (this.launcher) this.launcher.launch(req, events);
        else spawnTask(req, events);
      } catch (err) {
        // A synchronous failure (the log cannot be opened, spawn refuses its arguments): the task never ran.
        events.onError(err as Error);
      }
    };
    const cgroups = this.options.cgroups;
    if (!cgroups) launch();
    else {
      cgroups.createAsync(ctx.key, { cpuMillis: task.cpuMillis, memBytes: task.memBytes, pidsMax: this.options.pidsMax ?? 4096, gpuIndices: task.gpuIndices }).then(
        (cg) => {
          cgroup = cg;
          if (done) void cg.remove(); // cancelled while it was being made
          else launch();
        },
        (err: Error) => finish({ state: 'failed', exitCode: 126, reason: `could not create the task's cgroup: ${err.message}` }),
      );
    }
    if (ctx.assignment.walltimeMs !== undefined) {
      walltimeTimer = setTimeout(() => {
        walltimeExceeded = true;
        stop(this.killGraceMs);
      }, ctx.assignment.walltimeMs);
    }
    return {
      cancel(graceMs: number, reason: string) {
        if (done) return;
        cancelReason = reason;
        if (launched) stop(graceMs);
        else finish({ state: 'cancelled', reason }); // nothing runs yet, and nothing will
      },
    };
  }

  /**
   * Starts the launcher and makes a few pooled cgroups now: otherwise an agent's first tasks wait for both,
   * and right after a cluster starts, every agent's first tasks do so at once (in bench:real at 100 nodes,
   * starts in the first second had a median of 160 ms against 40 ms later). Then runs a test task.
   */
  async prepare(): Promise<string | undefined> {
    // What a crashed run left: its tasks are killed and reported lost at recovery; their homes go now.
    if (this.options.sandboxRoot) rmSync(this.options.sandboxRoot, { recursive: true, force: true });
    this.launcher?.start();
    await this.options.cgroups?.prefill();
    return this.selfTest();
  }

  /**
   * Runs `true` once as a task is run (a pooled cgroup, the launcher, its exit and what it used): a node
   * that cannot start tasks says so when its agent starts rather than at its first job, and that job does
   * not pay for code run for the first time. Resolves with what went wrong, or undefined.
   */
  private async selfTest(): Promise<string | undefined> {
    const dir = mkdtempSync(join(tmpdir(), 'qy-self-test-'));
    const nodeId = 'self-test';
    const task: TaskPlacement = { taskIndex: 0, nodeId, cpuMillis: 100, memBytes: 64 * 1024 ** 2, gpuIndices: [], gpuMilliEach: 0, extended: {} };
    const assignment: Assignment = { type: 'assign', jobId: nodeId, attemptId: `${nodeId}-a0`, nodeId, tenant: 'agent', tasks: [task], hosts: [nodeId], command: ['true'], dataClass: 'public', sandbox: false, walltimeMs: 10_000, atMs: Date.now() };
    try {
      const exit = await new Promise<TaskExit>((resolve) => this.start({ key: nodeId, assignment, task, nodeId, logPath: join(dir, 'task.log'), onExit: resolve }));
      return exit.state === 'succeeded' ? undefined : `a test task (\`true\`) ${exit.state}: ${exit.reason ?? `exit code ${exit.exitCode}`}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** A new private home (the task's uid gets it when the agent can change uids). */
  private newHome(): string {
    const root = this.options.sandboxRoot;
    if (!root) return mkdtempSync(join(tmpdir(), 'qy-sandbox-'));
    if (!existsSync(root)) {
      mkdirSync(root, { recursive: true });
      chmodSync(root, 0o755); // traversable by the task's uid (whatever the umask), which owns only its own home inside
    }
    return mkdtempSync(join(root, 'home-'));
  }

  async close(): Promise<void> {
    this.launcher?.close();
    await this.options.cgroups?.dispose();
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
