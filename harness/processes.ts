import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { SchedulerClient } from '../src/client';
import { freePort } from './ports';
import { waitUntil } from './wait';

/** A project process started by a test or benchmark, with its output kept for failure messages. */
export interface ChildService {
  child: ChildProcess;
  output(): string;
  /** kill -9 */
  kill9(): Promise<void>;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
}

/** Runs a TypeScript entry point of the project (through tsx) as a child process. */
export function spawnTs(script: string, args: string[], env: Record<string, string>): ChildService {
  // QY_CPU_PROF_DIR=dir writes a V8 CPU profile of every child when it exits (for finding hot spots);
  // QY_CPU_PROF_MATCH=text limits that to the children whose command line contains it (e.g. `scheduler`, or
  // `real-050` for one agent of bench:real);
  // QY_CPU_PROF_INTERVAL_US sets the sampling interval (V8's default, 1000 µs, costs a lot across 100 agents).
  const profiled = process.env.QY_CPU_PROF_DIR && [script, ...args].join(' ').includes(process.env.QY_CPU_PROF_MATCH ?? '');
  const interval = process.env.QY_CPU_PROF_INTERVAL_US ? [`--cpu-prof-interval=${process.env.QY_CPU_PROF_INTERVAL_US}`] : [];
  const profile = profiled ? ['--cpu-prof', `--cpu-prof-dir=${process.env.QY_CPU_PROF_DIR}`, ...interval] : [];
  if (process.env.QY_TRACE_GC) profile.push('--trace-gc');
  // QY_CHILD_LOG_DIR=dir keeps every child's whole output in dir/<script>-<pid>.log (QY_CHILD_LOG_LEVEL sets
  // the level of the children that log at warn by default), for a benchmark that went wrong after an hour.
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', script, ...args], { env: { ...process.env, ...env, ...(process.env.QY_CHILD_LOG_LEVEL ? { QY_LOG_LEVEL: process.env.QY_CHILD_LOG_LEVEL } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const logFile = process.env.QY_CHILD_LOG_DIR ? join(process.env.QY_CHILD_LOG_DIR, `${basename(script, '.ts')}-${child.pid}.log`) : undefined;
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
    if (logFile) appendFileSync(logFile, d);
  };
  if (process.env.QY_TRACE_GC) child.stdout?.on('data', (d: Buffer) => process.stderr.write(d.toString().split('\n').filter((l) => /Mark-Compact|Scavenge/.test(l) && /(\d{2,}\.\d) \/ /.test(l)).map((l) => `[${script}] ${l}\n`).join('')));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // A process stopped with SIGSTOP (the failover scenario's paused leader) would keep SIGTERM pending forever.
    if (sig === 'SIGTERM') child.kill('SIGCONT');
    child.kill(sig);
    await exited;
  };
  return { child, output: () => out, kill9: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}

/**
 * Starts `scheduler/main.ts` as a child process and waits until /readyz answers 200: by default until it
 * leads (a restarted replica may first wait out its predecessor's lease), with `role: 'any'` as a standby too,
 * with `role: 'none'` not at all.
 */
export async function spawnScheduler(natsUrl: string, options: { port?: number; env?: Record<string, string>; role?: 'leader' | 'any' | 'none' } = {}): Promise<ChildService & { url: string }> {
  const port = options.port ?? (await freePort());
  const svc = spawnTs('scheduler/main.ts', [], { QY_NATS_URL: natsUrl, QY_HTTP_PORT: String(port), QY_LOG_LEVEL: 'warn', ...options.env });
  const url = `http://127.0.0.1:${port}`;
  // 'none': started only (a process armed to die early, say, may never be ready).
  const role = options.role ?? 'leader';
  if (role === 'none') return { ...svc, url };
  const client = new SchedulerClient({ url, connections: 1 });
  try {
    await waitUntil(async () => ((await client.readiness({ role })).ready ? true : undefined), 30_000, () => `scheduler not ready:\n${svc.output()}`);
  } finally {
    await client.close();
  }
  return { ...svc, url };
}

/** Starts an agent of `count` virtual nodes (`agents/main.ts --simulate count`) as a child process. */
export function spawnVirtualNodeAgent(natsUrl: string, count: number, prefix: string, env: Record<string, string> = {}): ChildService {
  const stateDir = mkdtempSync(join(tmpdir(), `qy-${prefix}-`));
  return spawnTs('agents/main.ts', ['--simulate', String(count), '--prefix', prefix, '--agent-id', `${prefix}-agent`, '--state-dir', stateDir], { QY_NATS_URL: natsUrl, QY_LOG_LEVEL: 'warn', ...env });
}

/** A server binary (nats-server, prometheus, influxd, postgres) started for the demo, a test or a benchmark. */
export interface Daemon {
  child: ChildProcess;
  /** The stop signal (SIGTERM unless told), SIGKILL after the stop timeout; resolves once it has exited. */
  stop(): Promise<void>;
}

/** How a daemon is run and stopped, where the defaults do not suit it. */
export interface DaemonOptions {
  /** The signal that asks for a clean stop: postgres wants SIGINT (fast shutdown), as SIGTERM waits for its clients. */
  stopSignal?: NodeJS.Signals;
  /** How long a clean stop may take before SIGKILL; default 5 s. */
  stopTimeoutMs?: number;
  /** Run as this user and group (the caller must be root): postgres refuses to run as root. */
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a server binary and resolves once `ready` does. A server that exits first (a bad flag, a port in
 * use) fails at once with its last stderr, rather than after the readiness timeout.
 */
export async function startDaemon(command: string, args: string[], ready: () => Promise<unknown>, options: DaemonOptions = {}): Promise<Daemon> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], uid: options.uid, gid: options.gid, env: options.env });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<never>((_, reject) => {
    child.on('error', (err) => reject(new Error(`${command}: ${err.message}`)));
    child.on('exit', (code) => reject(new Error(`${command} exited with ${code}: ${stderr}`)));
  });
  exited.catch(() => undefined);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(options.stopSignal ?? 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs ?? 5_000);
    await gone;
    clearTimeout(timer);
  };
  try {
    await Promise.race([ready(), exited]);
  } catch (err) {
    await stop();
    throw err instanceof Error && !err.message.includes(stderr) && stderr ? new Error(`${err.message}\n${stderr}`) : err;
  }
  return { child, stop };
}
