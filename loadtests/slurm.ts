import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupCpuSeconds, detectCgroups } from '../agents/cgroups';
import { freePorts } from '../harness/ports';
import { waitUntil } from '../harness/wait';
import { latencyHistogram, percentileMs, round2, runClosedLoop } from './engine';
import { treeCpuSeconds, type ClosedLoopSummary } from './real';

/**
 * Slurm on the same machine (`npm run bench:slurm`), for issue 14's comparison: slurmctld and N slurmd
 * (one per node, `slurmd -N`, with `SlurmdParameters=config_overrides` so a node may claim more cores than
 * the machine has), munged on a private socket, all from Debian's packages and all in a temporary folder
 * on loopback ports; C closed-loop clients each run `sbatch --wrap true` and wait for it before the next,
 * M jobs in all — the scenario of bench:real.
 *
 * Start latency is the client's call of sbatch to slurmd's "Launching batch job" (its log, in ms); a job is
 * finished when slurmctld logs it done. CPU per role from a cgroup each (cpuacct on v1, cpu.stat on v2), so
 * slurmstepd and the job, which slurmd double-forks away from itself, count as slurmd's, as an agent's tasks
 * count as the agent's; without cgroups, from /proc (slurmstepd then goes uncounted, and the figure says so).
 */

/** The SchedulerParameters of each setting compared. */
export const SLURM_SETTINGS = {
  /** The setting the issue found best for latency: the submission's own scheduling attempt after 1 s at most. */
  'low-latency': 'batch_sched_delay=1',
  /** After Slurm's High Throughput Computing Administration Guide (slurm.schedmd.com/high_throughput.html). */
  throughput:
    'batch_sched_delay=20,bf_continue,bf_interval=300,bf_min_age_reserve=10800,bf_resolution=600,bf_yield_interval=1000000,partition_job_depth=500,sched_max_job_start=200,sched_min_interval=2000000',
} as const;
/** A named setting, or `custom` (SchedulerParameters given by the caller). */
export type SlurmSettings = keyof typeof SLURM_SETTINGS | 'custom';

export interface SlurmOptions {
  nodes: number;
  cores: number;
  jobs: number;
  clients: number;
  settings: SlurmSettings;
  /** SchedulerParameters for `custom`. */
  schedulerParameters?: string;
  progress?: (line: string) => void;
}

/** The SchedulerParameters of a run. */
export function schedulerParametersOf(settings: SlurmSettings, custom?: string): string {
  if (settings !== 'custom') return SLURM_SETTINGS[settings];
  if (!custom || /[\s#]/.test(custom)) throw new Error('custom Slurm settings need --scheduler-parameters, a comma-separated list without spaces');
  return custom;
}

/** CPU seconds per 1,000 jobs of Slurm's roles. */
export type SlurmCpuRoles = { slurmctld: number; slurmd: number; munge: number };

/** One Slurm run, in bench:real's terms. */
export interface SlurmSummary extends ClosedLoopSummary<SlurmCpuRoles> {
  settings: SlurmSettings;
  schedulerParameters: string;
  /** How CPU was measured: `cgroup` (everything), or `proc` (slurmstepd and the jobs not counted). */
  cpuFrom: 'cgroup' | 'proc';
}

const BINARIES = ['slurmctld', 'slurmd', 'sbatch', 'sinfo', 'munged'];

/** Where the Slurm binaries are, or an error saying how to install them. */
export function findSlurm(): Record<string, string> {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin']);
  const found: Record<string, string> = {};
  for (const b of BINARIES) {
    const dir = dirs.find((d) => d && existsSync(join(d, b)));
    if (dir) found[b] = join(dir, b);
  }
  const missing = BINARIES.filter((b) => !found[b]);
  if (missing.length > 0) throw new Error(`bench:slurm needs ${missing.join(', ')}: install Debian's Slurm with \`apt-get install -y slurmctld slurmd slurm-client munge\``);
  return found;
}

/** The slurm.conf of the bench cluster: N nodes of `cores` cores, each slurmd on its own loopback port. */
export function slurmConf(o: { dir: string; host: string; ctldPort: number; nodePorts: number[]; cores: number; schedulerParameters: string; mungeSocket: string }): string {
  const lines = [
    'ClusterName=qybench',
    `SlurmctldHost=${o.host}(127.0.0.1)`,
    `SlurmctldPort=${o.ctldPort}`,
    `SlurmdPort=${o.nodePorts[0]}`,
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${o.mungeSocket}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    `StateSaveLocation=${join(o.dir, 'state')}`,
    `SlurmdSpoolDir=${join(o.dir, 'spool', '%n')}`,
    `SlurmctldPidFile=${join(o.dir, 'slurmctld.pid')}`,
    `SlurmdPidFile=${join(o.dir, 'slurmd-%n.pid')}`,
    `SlurmctldLogFile=${join(o.dir, 'slurmctld.log')}`,
    `SlurmdLogFile=${join(o.dir, 'slurmd-%n.log')}`,
    // info: the log lines the latencies are read from (submission, launch, completion), with milliseconds.
    'SlurmctldDebug=info',
    'SlurmdDebug=info',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'MpiDefault=none',
    'SchedulerType=sched/backfill',
    `SchedulerParameters=${o.schedulerParameters}`,
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'SlurmdParameters=config_overrides',
    'ReturnToService=2',
    ...o.nodePorts.map((port, i) => `NodeName=${slurmNodeName(i)} NodeHostname=${o.host} NodeAddr=127.0.0.1 Port=${port} CPUs=${o.cores} RealMemory=${o.cores * 4096} State=UNKNOWN`),
    'PartitionName=bench Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
  ];
  return `${lines.join('\n')}\n`;
}

export const slurmNodeName = (i: number): string => `s${String(i + 1).padStart(3, '0')}`;

/** A Slurm log line's time (`[2026-12-05T21:38:27.402] …`, the machine's local time) in epoch ms. */
export function logLineMs(line: string): number | undefined {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?)\]/.exec(line);
  return m ? new Date(m[1]).getTime() : undefined;
}

/** Job id → time of the first line matching `pattern` (its group 1 is the job id), over log texts. */
export function eventTimes(texts: string[], pattern: RegExp): Map<number, number> {
  const out = new Map<number, number>();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const m = pattern.exec(line);
      if (!m) continue;
      const at = logLineMs(line);
      const id = Number(m[1]);
      if (at !== undefined && !out.has(id)) out.set(id, at);
    }
  }
  return out;
}

export const LAUNCH_LINE = /Launching batch job (\d+) /;
export const DONE_LINE = /_job_complete: JobId=(\d+) done/;

/** CPU of a group of processes and all they start: a cgroup where this machine has one, else /proc. */
class CpuMeter {
  private readonly dirs = new Map<string, string>();
  private version: 'v1' | 'v2' | undefined;
  private readonly pids = new Map<string, number[]>();

  constructor(tag: string, roles: string[]) {
    try {
      const d = detectCgroups(readFileSync('/proc/self/mounts', 'utf8'));
      const base = d.version === 'v2' ? d.root : d.version === 'v1' ? d.roots.cpuacct : undefined;
      if (base === undefined || d.version === 'none') return;
      for (const role of roles) {
        const dir = join(base, `${tag}-${role}`);
        mkdirSync(dir, { recursive: true });
        this.dirs.set(role, dir);
      }
      this.version = d.version;
    } catch {
      this.dirs.clear(); // not root, or read-only: /proc it is
    }
  }

  get from(): 'cgroup' | 'proc' {
    return this.version ? 'cgroup' : 'proc';
  }

  /** Puts a process (and so what it starts from now on) in the role's group. */
  add(role: string, pid: number): void {
    this.pids.set(role, [...(this.pids.get(role) ?? []), pid]);
    const dir = this.dirs.get(role);
    if (dir && this.version) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  }

  seconds(role: string): number {
    const dir = this.dirs.get(role);
    if (dir && this.version) return cgroupCpuSeconds(this.version, dir);
    return (this.pids.get(role) ?? []).reduce((sum, pid) => sum + treeCpuSeconds(pid, true), 0);
  }

  /** Removes the groups (their processes must be gone). */
  dispose(): void {
    for (const dir of this.dirs.values()) {
      try {
        rmdirSync(dir);
      } catch {
        // a straggler still in it: the kernel frees it once empty
      }
    }
  }
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { env }, (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout))),
  );
}

/** Runs the scenario on a Slurm cluster it starts and stops. */
export async function runSlurmScenario(options: SlurmOptions): Promise<SlurmSummary> {
  const progress = options.progress ?? (() => undefined);
  const bin = findSlurm();
  const schedulerParameters = schedulerParametersOf(options.settings, options.schedulerParameters);
  const dir = mkdtempSync(join(tmpdir(), 'qy-slurm-'));
  const children: ChildProcess[] = [];
  const cpu = new CpuMeter(`qy-slurm-bench-${process.pid}`, ['slurmctld', 'slurmd', 'munge']);
  const start = (role: string, file: string, args: string[], env: NodeJS.ProcessEnv) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once('exit', (code, signal) => {
      if (!stopping) progress(`  ${role} exited (${code ?? signal}): ${err.trim()}`);
    });
    if (child.pid !== undefined) cpu.add(role, child.pid);
    children.push(child);
    return child;
  };
  let stopping = false;
  try {
    mkdirSync(join(dir, 'state'));
    for (let i = 0; i < options.nodes; i++) mkdirSync(join(dir, 'spool', slurmNodeName(i)), { recursive: true });
    // munged wants a key only its user can read, and a socket of its own.
    const mungeKey = join(dir, 'munge.key');
    writeFileSync(mungeKey, randomBytes(1024), { mode: 0o600 });
    const mungeSocket = join(dir, 'munge.sock');
    start('munge', bin.munged, ['-F', '--force', `--socket=${mungeSocket}`, `--key-file=${mungeKey}`, `--pid-file=${join(dir, 'munged.pid')}`, `--log-file=${join(dir, 'munged.log')}`, `--seed-file=${join(dir, 'munge.seed')}`], process.env);
    await waitUntil(() => existsSync(mungeSocket) || undefined, 10_000, () => 'munged did not make its socket');

    const [ctldPort, ...nodePorts] = await freePorts(options.nodes + 1);
    const conf = join(dir, 'slurm.conf');
    writeFileSync(conf, slurmConf({ dir, host: hostname().split('.')[0], ctldPort, nodePorts, cores: options.cores, schedulerParameters, mungeSocket }));
    const env = { ...process.env, SLURM_CONF: conf };
    start('slurmctld', bin.slurmctld, ['-D', '-i'], env);
    await waitUntil(() => run(bin.sinfo, ['-h', '-o', '%D'], env), 30_000, () => 'slurmctld did not answer sinfo');
    progress(`starting ${options.nodes} slurmd of ${options.cores} cores (SchedulerParameters=${schedulerParameters})…`);
    for (let i = 0; i < options.nodes; i++) start('slurmd', bin.slurmd, ['-D', '-N', slurmNodeName(i)], env);
    await waitUntil(async () => Number((await run(bin.sinfo, ['-h', '-t', 'idle', '-o', '%D'], env)).trim() || 0) >= options.nodes || undefined, 120_000, () => `${options.nodes} nodes not idle`);
    await new Promise((r) => setTimeout(r, 2_000));
    progress(`${options.nodes} nodes idle; submitting ${options.jobs} jobs of \`true\` from ${options.clients} closed-loop sbatch clients`);

    const cpuNow = (): SlurmCpuRoles => ({ slurmctld: cpu.seconds('slurmctld'), slurmd: cpu.seconds('slurmd'), munge: cpu.seconds('munge') });
    const before = cpuNow();
    const sentMs = new Map<number, number>();
    const t0 = Date.now();
    let lastSubmitMs = t0;
    let failures = 0;
    await runClosedLoop(options.clients, options.jobs, async () => {
      const at = Date.now();
      try {
        const out = await run(bin.sbatch, ['--parsable', '-n', '1', '-c', '1', '-o', '/dev/null', '--wrap', 'true'], env);
        sentMs.set(Number(out.trim().split(';')[0]), at);
        lastSubmitMs = Date.now();
        if (sentMs.size % Math.max(1, Math.ceil(options.jobs / 5)) === 0) progress(`  ${sentMs.size} accepted`);
      } catch (err) {
        if (++failures <= 3) progress(`  sbatch failed: ${(err as Error).message}`);
      }
    });
    const ctldLog = join(dir, 'slurmctld.log');
    const doneTimes = () => eventTimes([readFileSync(ctldLog, 'utf8')], DONE_LINE);
    let done = doneTimes();
    for (const deadline = Date.now() + 300_000; [...sentMs.keys()].some((id) => !done.has(id)) && Date.now() < deadline; done = doneTimes()) await new Promise((r) => setTimeout(r, 500));
    const after = cpuNow();
    const launched = eventTimes(
      Array.from({ length: options.nodes }, (_, i) => readFileSync(join(dir, `slurmd-${slurmNodeName(i)}.log`), 'utf8')),
      LAUNCH_LINE,
    );
    const startLatency = latencyHistogram();
    let lastDoneMs = t0;
    let finished = 0;
    for (const [id, sent] of sentMs) {
      const ran = launched.get(id);
      if (ran !== undefined) startLatency.recordValue(Math.max(1, (ran - sent) * 1000));
      const end = done.get(id);
      if (end !== undefined) {
        finished++;
        lastDoneMs = Math.max(lastDoneMs, end);
      }
    }
    if (finished < sentMs.size) progress(`  ${sentMs.size - finished} accepted jobs did not finish within 300 s`);
    const makespanS = (lastDoneMs - t0) / 1000;
    const per1000 = (role: keyof SlurmCpuRoles) => round2(((after[role] - before[role]) * 1000) / Math.max(1, finished));
    return {
      settings: options.settings,
      schedulerParameters,
      nodes: options.nodes,
      jobs: sentMs.size,
      clients: options.clients,
      submitPerSec: round2(sentMs.size / Math.max((lastSubmitMs - t0) / 1000, 1e-9)),
      finishedPerSec: round2(finished / Math.max(makespanS, 1e-9)),
      makespanS: round2(makespanS),
      startP50Ms: percentileMs(startLatency, 50),
      startP99Ms: percentileMs(startLatency, 99),
      cpuPer1000Jobs: { slurmctld: per1000('slurmctld'), slurmd: per1000('slurmd'), munge: per1000('munge') },
      cpuFrom: cpu.from,
    };
  } finally {
    stopping = true;
    const exited = children.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()))));
    // slurmd first (it ends its steps), then the controller, then munge.
    for (const c of [...children].reverse()) c.kill('SIGTERM');
    await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 10_000))]);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    cpu.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
