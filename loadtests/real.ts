import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchedulerApiError, SchedulerClient } from '../src/client';
import { startNatsServer } from '../harness/nats-server';
import { spawnScheduler, spawnTs, type ChildService } from '../harness/processes';
import { waitForReadyNodes, writeTempTenantsFile } from '../harness/stack';
import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS, agentConsumerName, subjects, type JobSpecInput, type NodeSpec, type StatusReport } from '../src/protocol';
import { connectNats } from '../src/store/nats';
import { latencyHistogram, percentileMs, recordSince, round2, runClosedLoop, type Histogram } from './engine';

/**
 * The real-agent scenario (`npm run bench:real`): nats-server, the scheduler and N agent processes, one per
 * node (agents/main.ts with a node file each, running real processes), all on this machine; C closed-loop
 * clients submit M jobs of `true` (each client waits for its 202 before the next submission, like sbatch).
 * Start latency is submit to the job's `running` report, seen on NATS; a job is finished at its terminal report.
 */

const GiB = 1024 ** 3;

export interface RealOptions {
  nodes: number;
  /** Cores of each node. */
  cores: number;
  jobs: number;
  clients: number;
  /** Seconds of idle measured before the submissions (after 5 s of settling); 0 skips it. */
  idleSeconds?: number;
  /** Progress lines (stderr). */
  progress?: (line: string) => void;
}

/** The roles whose CPU is counted, as in bench:e2e's cpuPer1000Jobs. */
export type CpuRoles = { scheduler: number; agents: number; nats: number };

/** What bench:real and bench:slurm report of a closed-loop run (field names fixed by issue 14), CPU by role. */
export interface ClosedLoopSummary<Roles> {
  nodes: number;
  jobs: number;
  clients: number;
  submitPerSec: number;
  finishedPerSec: number;
  makespanS: number;
  startP50Ms: number;
  startP99Ms: number;
  cpuPer1000Jobs: Roles;
}

/** bench:real's final JSON line. */
export interface RealSummary extends ClosedLoopSummary<CpuRoles> {
  /** An idle agent's CPU, in % of a core (mean over the agents, before the submissions; issue 14's goal: ≤ 0.2). */
  idleAgentCpuPct?: number;
}

/** CPU seconds (user + system) of a process from /proc/<pid>/stat; with `children`, also its waited-for children's. */
export function cpuSeconds(pid: number | undefined, children = false): number {
  if (pid === undefined) return 0;
  try {
    return parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'), children);
  } catch {
    return 0; // gone
  }
}

/** The live children of a process (the agent's task launcher is one); none when it is gone. */
function liveChildren(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return []; // gone, or a kernel without the children file
  }
}

/** `of(pid)` summed over a process and its live descendants. */
function overTree(pid: number | undefined, of: (pid: number) => number): number {
  return pid === undefined ? 0 : liveChildren(pid).reduce((sum, child) => sum + overTree(child, of), of(pid));
}

/**
 * CPU seconds of a process and of its live descendants (the agent's task launcher is one), each with or
 * without its waited-for children's.
 */
export function treeCpuSeconds(pid: number | undefined, children = false): number {
  return overTree(pid, (p) => cpuSeconds(p, children));
}

/**
 * CPU seconds on the CPU, to the nanosecond, of a process's threads and its live descendants' (the scheduler's
 * run time in /proc/<pid>/task/<tid>/schedstat). Unlike the clock ticks of /proc/<pid>/stat it does not round
 * an idle process's short wake-ups to whole ticks, so it measures what an idle agent costs.
 */
export function schedCpuSeconds(pid: number | undefined): number {
  return overTree(pid, (p) => {
    let ns = 0;
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) ns += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) || 0;
    } catch {
      // gone, or a kernel without schedstat
    }
    return ns / 1e9;
  });
}

/** utime + stime (+ cutime + cstime) of a /proc/<pid>/stat line, in seconds (exported for tests). */
export function parseCpuSeconds(stat: string, children = false, ticksPerSecond = 100): number {
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  const ticks = Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0);
  return ticks / ticksPerSecond;
}

/** The spec of real node `i`: general pool, `cores` cores, 4 GiB per core. */
export function realNodeSpec(i: number, cores: number): NodeSpec {
  return {
    id: `real-${String(i + 1).padStart(3, '0')}`,
    pool: 'general',
    zone: 'bench',
    rack: `r${Math.floor(i / 20) + 1}`,
    labels: {},
    capacity: { cpuMillis: cores * 1000, memBytes: cores * 4 * GiB, gpus: 0, gpuMemBytes: 0 },
    securityLevel: 'internal',
    ratedPowerWatts: 400,
  } as NodeSpec;
}

/** The job every client submits: `true`, one core. */
export const TRUE_JOB: JobSpecInput = { pool: 'general', resources: { cpuMillis: 1000, memBytes: 256 * 1024 ** 2 }, command: ['true'], walltimeSeconds: 60 };

/** The summary, and the agents' CPU per 1,000 jobs split into their own and their tasks'. */
export interface RealResult {
  summary: RealSummary;
  agentsOwnPer1000Jobs: number;
  tasksPer1000Jobs: number;
}

/** Runs the scenario on processes it starts and stops. */
export async function runRealScenario(options: RealOptions): Promise<RealResult> {
  const progress = options.progress ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'qy-real-'));
  const tenants = writeTempTenantsFile({ operators: ['ops'], tenants: [{ name: 'bench', requestsPerSecond: 1_000_000 }] }, 'real');
  const stoppers: (() => Promise<unknown>)[] = [async () => rmSync(dir, { recursive: true, force: true }), async () => rmSync(tenants.dir, { recursive: true, force: true })];
  try {
    const nats = await startNatsServer();
    stoppers.push(() => nats.dispose());
    const scheduler = await spawnScheduler(nats.url, { env: { QY_LOG_LEVEL: 'warn', QY_TENANTS_FILE: tenants.file } });
    stoppers.push(() => scheduler.stop());

    progress(`starting ${options.nodes} agents of ${options.cores} cores…`);
    const agents: ChildService[] = [];
    const agentIds: string[] = [];
    stoppers.push(() => Promise.all(agents.map((a) => a.stop())));
    for (let i = 0; i < options.nodes; i++) {
      const spec = realNodeSpec(i, options.cores);
      agentIds.push(spec.id);
      const stateDir = join(dir, spec.id);
      mkdirSync(stateDir, { recursive: true });
      const nodeFile = join(stateDir, 'node.json');
      writeFileSync(nodeFile, JSON.stringify(spec));
      agents.push(spawnTs('agents/main.ts', ['--node-file', nodeFile, '--agent-id', spec.id, '--state-dir', stateDir], { QY_NATS_URL: nats.url, QY_LOG_LEVEL: 'warn' }));
      // A few at a time: 100 Node.js processes loading at once would starve each other on a small machine.
      if (i % 8 === 7) await new Promise((r) => setTimeout(r, 400));
    }
    await waitForReadyNodes(scheduler.url, tenants.tokens.ops, options.nodes, 300_000, () => agents.map((a) => a.output()).join('').slice(-4000));
    progress(`${options.nodes} nodes ready; submitting ${options.jobs} jobs of \`true\` from ${options.clients} closed-loop clients`);

    const watcher = await connectNats(nats.url, 'bench-real-watcher');
    stoppers.push(() => watcher.close());
    const api = new SchedulerClient({ url: scheduler.url, token: tenants.tokens.bench, connections: options.clients });
    stoppers.push(() => api.close());

    const times = new StartTimes();
    const finished = new Set<string>();
    let lastFinishNs = 0n;
    watcher.subscribe(subjects.allStatus, {
      callback: (err, msg) => {
        if (err) return;
        const at = process.hrtime.bigint();
        // A light check rather than the zod schema: the load generator's own CPU counts against the machine.
        const s = msg.json<Partial<StatusReport>>();
        if (typeof s.jobId !== 'string') return;
        if (s.state === 'running') times.ran(s.jobId, at, String(s.nodeId));
        else if (s.state !== undefined && !finished.has(s.jobId)) {
          finished.add(s.jobId);
          lastFinishNs = at;
        }
      },
    });
    watcher.subscribe(subjects.allAssign, {
      callback: (err, msg) => {
        if (err) return;
        const at = process.hrtime.bigint();
        const a = msg.json<{ type?: string; jobId?: unknown }>();
        if (a.type === 'assign' && typeof a.jobId === 'string') times.assigned(a.jobId, at);
      },
    });
    await watcher.flush();

    const pids = { scheduler: scheduler.child.pid, agents: agents.map((a) => a.child.pid), nats: nats.pid };
    // An agent's own CPU includes its task launcher's (a live child); what they reaped is their tasks'.
    const agentsOwn = () => pids.agents.reduce<number>((sum, pid) => sum + treeCpuSeconds(pid), 0);
    const cpuNow = (): CpuRoles => ({
      scheduler: cpuSeconds(pids.scheduler),
      // An agent's children are its tasks: their CPU is the agent's cost of running them.
      agents: pids.agents.reduce<number>((sum, pid) => sum + treeCpuSeconds(pid, true), 0),
      nats: cpuSeconds(pids.nats),
    });
    let idleAgentCpuPct: number | undefined;
    const idleS = options.idleSeconds ?? 10;
    if (idleS > 0) {
      const agentsRunTime = () => pids.agents.reduce<number>((sum, pid) => sum + schedCpuSeconds(pid), 0);
      await new Promise((r) => setTimeout(r, 5_000));
      const before = agentsRunTime();
      await new Promise((r) => setTimeout(r, idleS * 1000));
      const used = agentsRunTime() - before;
      idleAgentCpuPct = Math.round((10_000 * used) / idleS / Math.max(1, pids.agents.length)) / 100;
      progress(`idle: ${idleAgentCpuPct}% of a core per agent over ${idleS} s`);
    }
    const cpuBefore = cpuNow();
    const ownBefore = agentsOwn();
    const t0 = process.hrtime.bigint();
    let accepted = 0;
    let failures = 0;
    let lastSubmitNs = t0;
    const progressEvery = Math.max(1, Math.ceil(options.jobs / 5));
    await runClosedLoop(options.clients, options.jobs, async () => {
      const sentNs = process.hrtime.bigint();
      try {
        const { id } = await api.submit(TRUE_JOB);
        accepted++;
        times.sent(id, sentNs);
        lastSubmitNs = process.hrtime.bigint();
        if (accepted % progressEvery === 0) progress(`  ${accepted} accepted, ${finished.size} finished`);
      } catch (err) {
        failures++;
        if (failures <= 3) progress(`  submission failed: ${err instanceof SchedulerApiError ? `${err.statusCode} ${err.message}` : (err as Error).message}`);
      }
    });
    const expected = accepted;
    const deadline = Date.now() + 120_000;
    while (finished.size < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cpuAfter = cpuNow();
    const ownAfter = agentsOwn();
    const submitS = Number(lastSubmitNs - t0) / 1e9;
    const makespanS = Number((lastFinishNs > t0 ? lastFinishNs : process.hrtime.bigint()) - t0) / 1e9;
    if (finished.size < expected) progress(`  ${expected - finished.size} accepted jobs did not finish within 120 s`);
    // Work JetStream delivered again after its ack wait: an agent that lost an assignment runs it that much later.
    const jsm = await jetstreamManager(watcher);
    let redelivered = 0;
    for (const id of agentIds) redelivered += (await jsm.consumers.info(STREAMS.assign, agentConsumerName(id)).catch(() => undefined))?.num_redelivered ?? 0;
    const { start, scheduler: schedulerPart, agents: agentPart, lateByNode, slowest, slowestEarly } = times.latencies(t0);
    progress(`  assignments JetStream delivered again (after its ack wait): ${redelivered}; slowest start ${percentileMs(start, 100)} ms`);
    if (lateByNode.size > 0) progress(`  starts more than 5 s after submission, by node: ${[...lateByNode].map(([node, n]) => `${node} ${n}`).join(', ')}`);
    progress(
      `  submit→assigned p50 ${percentileMs(schedulerPart, 50)} ms p99 ${percentileMs(schedulerPart, 99)} ms; ` +
        `assigned→running p50 ${percentileMs(agentPart, 50)} ms p99 ${percentileMs(agentPart, 99)} ms; ` +
        `${slowestEarly} of the slowest ${slowest} starts were submitted in the first second`,
    );
    const per1000 = (role: keyof CpuRoles) => round2(((cpuAfter[role] - cpuBefore[role]) * 1000) / Math.max(1, finished.size));
    const summary: RealSummary = {
      nodes: options.nodes,
      jobs: accepted,
      clients: options.clients,
      submitPerSec: round2(accepted / Math.max(submitS, 1e-9)),
      finishedPerSec: round2(finished.size / Math.max(makespanS, 1e-9)),
      makespanS: round2(makespanS),
      startP50Ms: percentileMs(start, 50),
      startP99Ms: percentileMs(start, 99),
      cpuPer1000Jobs: { scheduler: per1000('scheduler'), agents: per1000('agents'), nats: per1000('nats') },
      ...(idleAgentCpuPct !== undefined ? { idleAgentCpuPct } : {}),
    };
    const agentsOwnPer1000Jobs = round2(((ownAfter - ownBefore) * 1000) / Math.max(1, finished.size));
    return { summary, agentsOwnPer1000Jobs, tasksPer1000Jobs: round2(summary.cpuPer1000Jobs.agents - agentsOwnPer1000Jobs) };
  } finally {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => undefined);
  }
}

/**
 * What the run saw of each job: when its submission was sent (known once its 202 names it), its first
 * assignment on NATS, and its first `running` report with the node. Latencies are worked out once the run is
 * over, so a report that overtakes its job's 202 needs no special case.
 */
export class StartTimes {
  private readonly sentNs = new Map<string, bigint>();
  private readonly assignedNs = new Map<string, bigint>();
  private readonly running = new Map<string, { atNs: bigint; nodeId: string }>();

  sent(jobId: string, atNs: bigint): void {
    this.sentNs.set(jobId, atNs);
  }

  assigned(jobId: string, atNs: bigint): void {
    if (!this.assignedNs.has(jobId)) this.assignedNs.set(jobId, atNs);
  }

  ran(jobId: string, atNs: bigint, nodeId: string): void {
    if (!this.running.has(jobId)) this.running.set(jobId, { atNs, nodeId });
  }

  /**
   * Start latency (submission to `running`) of the jobs submitted in the run, split into the scheduler's part
   * (to the assignment) and the agents' (assignment to `running`); starts more than 5 s late by node (a
   * stalled agent shows as one node); and how many of the slowest 1% were submitted in the run's first
   * second after `t0Ns` (a cold start shows there).
   */
  latencies(t0Ns: bigint): { start: Histogram; scheduler: Histogram; agents: Histogram; lateByNode: Map<string, number>; slowest: number; slowestEarly: number } {
    const start = latencyHistogram();
    const scheduler = latencyHistogram();
    const agents = latencyHistogram();
    const lateByNode = new Map<string, number>();
    const whole: { sentNs: bigint; ns: bigint }[] = [];
    for (const [id, sentNs] of this.sentNs) {
      const assignedNs = this.assignedNs.get(id);
      const running = this.running.get(id);
      if (assignedNs !== undefined) recordSince(scheduler, sentNs, assignedNs);
      if (!running) continue;
      recordSince(start, sentNs, running.atNs);
      if (assignedNs !== undefined) recordSince(agents, assignedNs, running.atNs);
      if (running.atNs - sentNs > 5_000_000_000n) lateByNode.set(running.nodeId, (lateByNode.get(running.nodeId) ?? 0) + 1);
      whole.push({ sentNs, ns: running.atNs - sentNs });
    }
    whole.sort((a, b) => (a.ns < b.ns ? 1 : a.ns > b.ns ? -1 : 0));
    const slowest = whole.slice(0, Math.max(1, Math.floor(whole.length / 100)));
    return { start, scheduler, agents, lateByNode, slowest: slowest.length, slowestEarly: slowest.filter((w) => w.sentNs - t0Ns < 1_000_000_000n).length };
  }
}
