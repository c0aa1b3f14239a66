import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SchedulerClient } from '../src/client';
import { TERMINAL_JOB_STATES, type JobView } from '../src/protocol';
import { seededRng, randInt } from '../src/sim/rng';
import { check, parseHistory, type CheckResult, type FinalJob, type MeteredTask } from './checker';
import { describeFault, FAULT_KINDS, planFaults, runFault, type FaultKind, type PlannedFault } from './faults';
import { startChaosStack, type ChaosStack } from './stack';
import { chaosJob, submitter } from './workload';

export interface CampaignOptions {
  seed: number;
  durationS: number;
  agents?: number;
  nodesPerAgent?: number;
  /** Fault kinds to draw from (all by default). */
  kinds?: readonly FaultKind[];
  /** Agent partitions longer than the down threshold (see planFaults). */
  longAgentPartitions?: boolean;
  /** Database outages last this long (ms) instead of a few seconds: the archive's backlog under load. */
  dbOutageMs?: number;
  /** At most this many faults (the schedule is cut after them). */
  maxFaults?: number;
  /** How long acknowledged jobs may take to end once the faults are over. */
  convergeTimeoutMs?: number;
  /** Keep the work folder (history file, process output) after the run. */
  keep?: boolean;
  log?: (line: string) => void;
}

/** The campaign's final JSON line, field for field as `npm run chaos -- --json` prints it: the run, then the checker's counts. */
export type CampaignSummary = { seed: number; durationS: number; faults: number } & Omit<CheckResult, 'examples'>;

export interface CampaignReport {
  summary: CampaignSummary;
  check: CheckResult;
  schedule: PlannedFault[];
  /** Faults by kind, as run. */
  faultCounts: Partial<Record<FaultKind, number>>;
  submissions: { submitted: number; failedTries: number; replays: number };
  workDir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set<string>(TERMINAL_JOB_STATES);

/**
 * One fault-injection campaign: start the stack, submit work steadily (and in bursts) while the seeded
 * schedule of faults runs, heal everything, wait for every acknowledged job to end, then read the history
 * and the API's answers and check them.
 */
export async function runCampaign(options: CampaignOptions): Promise<CampaignReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const workDir = mkdtempSync(join(tmpdir(), `qy-chaos-${options.seed}-`));
  const historyFile = join(workDir, 'history.log');
  writeFileSync(historyFile, '');
  let schedule = planFaults(seededRng(options.seed), options.durationS, options.kinds ?? FAULT_KINDS, options.agents ?? 3, { longAgentPartitions: options.longAgentPartitions, dbOutageMs: options.dbOutageMs });
  if (options.maxFaults !== undefined) schedule = schedule.slice(0, options.maxFaults);
  log(`chaos campaign: seed ${options.seed}, ${options.durationS} s, ${schedule.length} faults planned:`);
  for (const f of schedule) log(`  ${describeFault(f)}`);

  const stack = await startChaosStack({ agents: options.agents ?? 3, nodesPerAgent: options.nodesPerAgent ?? 2, workDir, log });
  const client = stack.client();
  const ops = stack.client(stack.operatorToken);
  try {
    const rng = seededRng(options.seed ^ 0x5eed);
    const startMs = Date.now();
    const endMs = startMs + options.durationS * 1000;
    const convergeMs = options.convergeTimeoutMs ?? 240_000;
    const sub = submitter(client, () => endMs + convergeMs / 2);
    let n = 0;
    const replays: Promise<unknown>[] = [];
    const submitOne = (key: string) => {
      // With long partitions, some tasks run longer than the down threshold, so a cut-off agent still has them when its node goes down.
      const spec = chaosJob(historyFile, rng, options.longAgentPartitions ? 0.3 : 0);
      const first = sub.submit(key, spec);
      // Some keys are sent again a little later (after the next fault, likely): the same job must answer.
      if (rng() < 0.25) {
        const delay = randInt(rng, 1_000, 8_000);
        replays.push(first.then(async (id) => (id ? (await sleep(delay), sub.submit(key, spec)) : undefined)));
      }
      return first;
    };

    // Steady work: a submission every 300-900 ms.
    const steady = (async () => {
      while (Date.now() < endMs) {
        void submitOne(`s${options.seed}-${++n}`);
        await sleep(randInt(rng, 300, 900));
      }
    })();

    // Faults, one after another, on the schedule.
    const faultCounts: Partial<Record<FaultKind, number>> = {};
    const faults = (async () => {
      for (const f of schedule) {
        const wait = startMs + f.atS * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        if (Date.now() >= endMs) break;
        log(`[${((Date.now() - startMs) / 1000).toFixed(1)} s, ${Date.now()}] ${describeFault(f)}`);
        const burst = async (count: number) => {
          // Each key of a burst is sent twice at once: concurrent duplicates must still make one job.
          const keys = Array.from({ length: count }, (_, i) => `b${options.seed}-${f.index}-${i}`);
          await Promise.all(keys.flatMap((key) => { const spec = chaosJob(historyFile, rng); return [sub.submit(key, spec), sub.submit(key, spec)]; }));
        };
        try {
          await runFault(stack, f, burst, log);
          faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
        } catch (err) {
          log(`  fault #${f.index} failed: ${(err as Error).message}`);
          faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
        }
      }
    })();

    await Promise.all([steady, faults]);
    log(`[${((Date.now() - startMs) / 1000).toFixed(1)} s, ${Date.now()}] workload and faults over; healing and waiting for every acknowledged job to end`);
    await healAll(stack, log);
    await Promise.allSettled(replays);
    await sub.drain();

    const jobIds = [...new Set(sub.acks.map((a) => a.jobId))];
    const finalJobs = await waitForEnds(client, jobIds, convergeMs, log);
    const metered = await waitForMetering(client, finalJobs, 60_000);
    const period = localMonth(Date.now());
    const summary = await client.usage({ period });
    const audit = await ops.send<{ ok: boolean }>('GET', '/v1/audit/verify', { retry: { attempts: 10, initialDelayMs: 500, deadlineMs: 60_000 } });
    if (audit.status !== 200 || audit.body.ok !== true) log(`  audit verification: HTTP ${audit.status} ${audit.text.slice(0, 500)}`);
    const history = parseHistory(readFileSync(historyFile, 'utf8'));
    const result = check({
      history,
      acks: sub.acks,
      finalJobs,
      metered,
      summaryCpuByJob: Object.fromEntries(Object.entries(summary.byJob).map(([id, f]) => [id, f.cpuMilliSeconds])),
      auditOk: audit.status === 200 && audit.body.ok === true,
    });
    const faultsRun = Object.values(faultCounts).reduce((a, b) => a + (b ?? 0), 0);
    log(`faults run: ${JSON.stringify(faultCounts)}`);
    log(`submissions: ${JSON.stringify(sub.stats)}; acknowledged jobs ${result.acked}; task runs in the history ${history.runs.length}`);
    for (const [kind, list] of Object.entries(result.examples)) for (const e of list) log(`  ${kind}: ${e}`);
    // What the API says happened to the jobs of each anomaly: its attempts and why each ended.
    const anomalous = new Set(Object.entries(result.examples).flatMap(([kind, list]) => (kind === 'auditValid' || kind === 'history' ? [] : list.map((e) => /^([A-Za-z0-9]+)[-/:]/.exec(e)?.[1] ?? ''))));
    for (const id of [...anomalous].filter(Boolean).slice(0, 10)) {
      const view = await client.send<JobView>('GET', `/v1/jobs/${id}`).catch(() => undefined);
      if (view?.status === 200) log(`  job ${id}: ${view.body.state}; ${view.body.history.map((h) => `${h.attemptId} on ${h.nodes.join(',')} ${h.outcome} at ${h.at}${h.reason ? ` (${h.reason})` : ''}`).join('; ')}`);
    }
    return {
      summary: {
        seed: options.seed,
        durationS: options.durationS,
        faults: faultsRun,
        acked: result.acked,
        lost: result.lost,
        duplicateStarts: result.duplicateStarts,
        overlaps: result.overlaps,
        doubleMetered: result.doubleMetered,
        unmetered: result.unmetered,
        auditValid: result.auditValid,
      },
      check: result,
      schedule,
      faultCounts,
      submissions: sub.stats,
      workDir,
    };
  } catch (err) {
    for (const p of [...stack.replicas, ...stack.agents]) log(`--- ${p.name} output ---\n${p.svc.output().slice(-3000)}`);
    throw err;
  } finally {
    await client.close();
    await ops.close();
    await stack.stop();
    // With --keep, every process's last output beside the history, for reading an anomaly.
    if (options.keep) for (const p of [...stack.replicas, ...stack.agents]) writeFileSync(join(workDir, `${p.name}.log`), p.svc.output());
    if (!options.keep) rmSync(workDir, { recursive: true, force: true });
  }
}

/** Undoes whatever a fault may have left (a failed heal): every proxy healed, every process running. */
async function healAll(stack: ChaosStack, log: (line: string) => void): Promise<void> {
  for (const p of [...stack.replicas, ...stack.agents]) {
    for (const proxy of p.proxies) proxy.heal();
    if (p.svc.child.exitCode !== null || p.svc.child.signalCode !== null) {
      log(`  ${p.name} was not running: restart`);
      await p.start();
    } else p.svc.child.kill('SIGCONT');
  }
}

/** Final views of the jobs, once every one is terminal (or the timeout passed: what is left is as it is). */
async function waitForEnds(client: SchedulerClient, ids: string[], timeoutMs: number, log: (line: string) => void): Promise<Map<string, FinalJob>> {
  const views = new Map<string, FinalJob>();
  const deadline = Date.now() + timeoutMs;
  let open = [...ids];
  for (;;) {
    const still: string[] = [];
    for (let i = 0; i < open.length; i += 16) {
      await Promise.all(
        open.slice(i, i + 16).map(async (id) => {
          const res = await client.send<JobView>('GET', `/v1/jobs/${id}`).catch(() => undefined);
          if (res?.status === 200) views.set(id, { id, state: res.body.state, tasks: res.body.tasks, attemptId: res.body.attemptId });
          else if (res?.status === 404) views.delete(id);
          if (res?.status !== 200 || !TERMINAL.has(res.body.state)) still.push(id);
        }),
      );
    }
    open = still;
    if (open.length === 0) return views;
    if (Date.now() > deadline) {
      log(`  ${open.length} jobs still not ended after ${timeoutMs / 1000} s: ${open.slice(0, 5).join(', ')}`);
      return views;
    }
    await sleep(1_000);
  }
}

/** The metered tasks, once every succeeded job's final attempt is among them (or the timeout passed). */
async function waitForMetering(client: SchedulerClient, jobs: Map<string, FinalJob>, timeoutMs: number): Promise<MeteredTask[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listed = await client.usageTasks({ period: localMonth(Date.now()) }).catch(() => undefined);
    if (listed) {
      const metered = listed.items.map((u) => ({
        jobId: u.jobId,
        attemptId: u.attemptId,
        taskIndex: u.taskIndex,
        runMs: u.segments.reduce((n, s) => n + s.runMs, 0),
        cpuMilliSeconds: u.segments.reduce((n, s) => n + s.cpuMilliSeconds, 0),
      }));
      const keys = new Set(metered.map((m) => `${m.attemptId}/${m.taskIndex}`));
      const complete = [...jobs.values()].every((j) => j.state !== 'succeeded' || keys.has(`${j.attemptId}/0`));
      if (complete || Date.now() > deadline) return metered;
    } else if (Date.now() > deadline) return [];
    await sleep(1_000);
  }
}

/** The calendar month in the cluster's local time (UTC+8), as the usage API takes it. */
function localMonth(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 7);
}
