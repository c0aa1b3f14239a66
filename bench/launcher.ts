/**
 * `npm run bench:launcher`: what starting a task costs a node, by way of the agent's launcher against a
 * spawn from Node.js. Runs M tasks of `true` (C at a time) each way, each with its own log file, and reads
 * CPU from /proc: the starter (this process, plus the launcher process when there is one) and the tasks (their waited-
 * for CPU, which includes what the child did between fork and exec). With `--cgroup DIR` every task joins the
 * cgroup DIR first (the launcher's child writes its pid; spawn goes through the shell wrapper, as the agent
 * does). Final JSON line: {"tasks","concurrency","launcher":{"starterMsPerTask","childMsPerTask","totalMsPerTask","tasksPerSec"},"spawn":{…},"ratio"}.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Launcher, type LaunchRequest } from '../agents/runners/launcher';

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

/** utime+stime and cutime+cstime of a process, in seconds. */
function cpu(pid: number | 'self'): { own: number; children: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { own: (Number(f[11]) + Number(f[12])) / 100, children: (Number(f[13]) + Number(f[14])) / 100 };
}

/** What the agent gives every task, so both ways build the same environment. */
const ENV: Record<string, string> = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', QY_JOB_ID: 'bench', QY_ATTEMPT_ID: 'bench-a1', QY_NODE_ID: 'n1', QY_TASK_INDEX: '0', QY_CPUS: '1', CUDA_VISIBLE_DEVICES: '' };
const JOIN_CGROUP = 'echo $$ > "$1" || exit 125; shift; exec "$@"';

async function run(way: 'launcher' | 'spawn') {
  const dir = mkdtempSync(join(tmpdir(), `qy-bench-${way}-`));
  const procs = opts.cgroup ? [join(opts.cgroup, 'cgroup.procs')] : [];
  const launcher = way === 'launcher' ? new Launcher() : undefined;
  let starter: number | 'self' = 'self';
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req: LaunchRequest = { argv: ['/bin/true'], env: ENV, logPath: join(dir, `${i}.log`), cgroupProcs: procs };
      if (launcher) {
        launcher.launch(req, {
          onSpawn: (pid) => {
            if (starter === 'self') starter = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
          },
          onClose: (code) => (code === 0 ? resolve() : reject(new Error(`task exited ${code}`))),
          onError: reject,
        });
        return;
      }
      const argv = procs.length > 0 ? ['/bin/sh', '-c', JOIN_CGROUP, 'qy-task', procs[0], ...req.argv] : req.argv;
      const fd = openSync(req.logPath, 'a');
      const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: req.env });
      closeSync(fd);
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`task exited ${code}`))));
    });
  await one(-1); // starts the launcher
  // The starter's CPU: this process (what the agent does to start a task), plus the launcher's.
  const starterCpu = () => cpu('self').own + (starter === 'self' ? 0 : cpu(starter).own);
  const childCpu = () => (starter === 'self' ? cpu('self') : cpu(starter)).children;
  const before = { own: starterCpu(), children: childCpu() };
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < tasks) await one(next++);
  }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = { own: starterCpu(), children: childCpu() };
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
