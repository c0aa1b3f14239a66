/**
 * `npm run bench:launcher`: what starting a task costs a node, by way of the agent's launcher against a
 * spawn from Node.js. Runs M tasks of `true` (C at a time) each way, each with its own log file, and reads
 * CPU from /proc: the starter (this process, plus the launcher process when there is one) and the tasks (their waited-
 * for CPU, which includes what the child did between fork and exec). With `--cgroup DIR` every task joins the
 * cgroup DIR first (both ways start tasks exactly as the agent's ProcessRunner does: `Launcher.launch` or
 * `spawnTask`, whose shell wrapper joins the cgroup). Final JSON line: {"tasks","concurrency","launcher":{"starterMsPerTask","childMsPerTask","totalMsPerTask","tasksPerSec"},"spawn":{…},"ratio"}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Launcher, type LaunchEvents, type LaunchRequest } from '../agents/runners/launcher';
import { spawnTask } from '../agents/runners/process-runner';
import { runClosedLoop } from '../loadtests/engine';
import { cpuSeconds } from '../loadtests/real';

const program = new Command('bench:launcher')
  .option('--tasks <n>', 'tasks each way', '2000')
  .option('--concurrency <n>', 'tasks under way at once', '4')
  .option('--cgroup <dir>', 'a cgroup every task joins (its cgroup.procs)')
  .parse();
const opts = program.opts<{ tasks: string; concurrency: string; cgroup?: string }>();
const tasks = Number(opts.tasks);
const concurrency = Number(opts.concurrency);
if (!Number.isInteger(tasks) || tasks < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('bench:launcher: --tasks and --concurrency must be positive integers\n');
  process.exit(2);
}

/** What the agent gives every task, so both ways build the same environment. */
const ENV: Record<string, string> = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', QY_JOB_ID: 'bench', QY_ATTEMPT_ID: 'bench-a1', QY_NODE_ID: 'n1', QY_TASK_INDEX: '0', QY_CPUS: '1', CUDA_VISIBLE_DEVICES: '' };

/** Starts `tasks` tasks of `true` one way, `concurrency` at a time, as the agent's ProcessRunner would. */
async function run(way: 'launcher' | 'spawn') {
  const dir = mkdtempSync(join(tmpdir(), `qy-bench-${way}-`));
  const cgroupProcs = opts.cgroup ? [join(opts.cgroup, 'cgroup.procs')] : [];
  const launcher = way === 'launcher' ? new Launcher() : undefined;
  const start = (req: LaunchRequest, events: LaunchEvents) => (launcher ? launcher.launch(req, events) : spawnTask(req, events));
  const one = (i: number) =>
    new Promise<void>((resolve, reject) =>
      start({ argv: ['/bin/true'], env: ENV, logPath: join(dir, `${i}.log`), cgroupProcs }, { onSpawn: () => undefined, onClose: (code) => (code === 0 ? resolve() : reject(new Error(`task exited ${code}`))), onError: reject }),
    );
  await one(-1); // starts the launcher
  // The starter's CPU is this process's (what the agent does to start a task) plus the launcher's; the
  // children's is what the starting process reaped (spawn: this one; else the launcher).
  const reaper = launcher?.pid ?? process.pid;
  const sample = () => ({ own: cpuSeconds(process.pid) + (launcher ? cpuSeconds(reaper) : 0), children: cpuSeconds(reaper, true) - cpuSeconds(reaper) });
  const before = sample();
  const t0 = process.hrtime.bigint();
  await runClosedLoop(concurrency, tasks, one);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = sample();
  launcher?.close();
  rmSync(dir, { recursive: true, force: true });
  const ms = (s: number) => Math.round((s * 1e6) / tasks) / 1000;
  const starterMsPerTask = ms(after.own - before.own);
  const childMsPerTask = ms(after.children - before.children);
  return { starterMsPerTask, childMsPerTask, totalMsPerTask: Math.round((starterMsPerTask + childMsPerTask) * 1000) / 1000, tasksPerSec: Math.round(tasks / seconds) };
}

if (!Launcher.available()) {
  process.stderr.write('bench:launcher: no /usr/bin/perl, so no launcher to measure\n');
  process.exit(2);
}
// Something must keep the event loop alive: the launcher's pipes do not (an agent has its NATS connection).
const keepAlive = setInterval(() => undefined, 60_000);
const launcher = await run('launcher');
const spawned = await run('spawn');
clearInterval(keepAlive);
for (const [name, r] of [['launcher', launcher], ['spawn', spawned]] as const) {
  console.log(`${name.padEnd(8)} starter ${r.starterMsPerTask} ms + child ${r.childMsPerTask} ms = ${r.totalMsPerTask} ms of CPU a task, ${r.tasksPerSec} tasks/s`);
}
const ratio = Math.round((spawned.totalMsPerTask / Math.max(1e-9, launcher.totalMsPerTask)) * 100) / 100;
console.log(`spawn costs ${ratio}× the launcher's CPU per task`);
console.log(JSON.stringify({ tasks, concurrency, launcher, spawn: spawned, ratio }));
