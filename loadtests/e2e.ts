import { SchedulerApiError, SchedulerClient } from '../src/client';
import { startLocalStack } from '../harness/stack';
import { waitUntil } from '../harness/wait';
import { subjects, TERMINAL_JOB_STATES, type JobSpecInput, type StatusReport } from '../src/protocol';
import { connectNats } from '../src/store/nats';
import { cpuSeconds } from './real';
import { constantProfile, latencyHistogram, percentileMs, recordSince, round2, runOpenModel, type Histogram } from './engine';

/**
 * The end-to-end scenario (`npm run bench:e2e`): nats-server, the scheduler and an agent of virtual nodes,
 * each a separate process (the local stack); the load engine submits mixed jobs over HTTP at a fixed rate, and
 * the first `running` report of each job on NATS gives submit-to-running. A warm-up (2 s at 200/s, 3 s at the
 * rate) comes first and is not counted; then the fixed-rate phase and, optionally, a saturation phase.
 */

const GiB = 1024 ** 3;

export interface E2eOptions {
  /** Submissions per second of the fixed-rate phase, and its length. */
  rate: number;
  durationS: number;
  /** Offered rate of the saturation phase (0 skips it), and its length. */
  maxRate: number;
  maxDurationS: number;
  /** Virtual nodes (tasks sleep for their declared duration). */
  nodes: number;
  /** HTTP connections of the load generator. */
  connections: number;
  /** Progress lines (stderr). */
  progress?: (line: string) => void;
}

/** What one phase measured. */
export interface PhaseResult {
  offeredRate: number;
  seconds: number;
  sent: number;
  accepted: number;
  rejected: number;
  errors: number;
  acceptedPerSec: number;
  ack: Histogram;
  running: Histogram;
  ids: string[];
}

export interface E2eResult {
  nodes: number;
  fixed: PhaseResult;
  saturation?: PhaseResult;
  /** CPU seconds per 1,000 jobs accepted in the fixed-rate phase, by process. */
  cpuPerThousandJobs: Record<string, number>;
  /** Acknowledged jobs not finished 60 s after the load, and how many were acknowledged. */
  lost: number;
  acked: number;
}

/** A mixed job: mostly general, some GPU work, a few whole HPC nodes; each runs about a second. */
export function e2eJob(i: number): JobSpecInput {
  const kind = i % 10;
  if (kind < 6) return { pool: 'general', resources: { cpuMillis: 1000 + (i % 4) * 1000, memBytes: 2 * GiB }, durationSeconds: 1 };
  if (kind < 9) return { pool: 'intelligent', resources: { cpuMillis: 8000, memBytes: 32 * GiB, gpus: 1 + (i % 2) }, durationSeconds: 1 };
  return { pool: 'super', resources: { cpuMillis: 64_000, memBytes: 64 * GiB }, walltimeSeconds: 60, durationSeconds: 0 };
}

/** Runs the scenario on a local stack it starts and stops. */
export async function runE2eScenario(options: E2eOptions): Promise<E2eResult> {
  const progress = options.progress ?? (() => undefined);
  progress(`waiting for ${options.nodes} virtual nodes to register…`);
  const stack = await startLocalStack({ nodes: options.nodes, prefix: 'bench', tenants: [{ name: 'bench', requestsPerSecond: 1_000_000 }] });
  const api = new SchedulerClient({ url: stack.url, token: stack.tokens.bench, connections: options.connections });
  const watcher = await connectNats(stack.natsUrl, 'bench-watcher');
  try {
    // Submit-to-running: the first `running` report of a job, matched with its submission time.
    const submittedAtNs = new Map<string, bigint>();
    const runningAtNs = new Map<string, bigint>();
    let phaseRunning = latencyHistogram();
    watcher.subscribe(subjects.allStatus, {
      callback: (err, msg) => {
        if (err) return;
        const at = process.hrtime.bigint();
        // A light check rather than the zod schema: the load generator's own CPU counts against the machine.
        const s = msg.json<Partial<StatusReport>>();
        if (s.state !== 'running' || s.taskIndex !== 0 || typeof s.jobId !== 'string' || s.attemptId !== `${s.jobId}-a1`) return;
        const sent = submittedAtNs.get(s.jobId);
        if (sent === undefined) return void runningAtNs.set(s.jobId, at);
        recordSince(phaseRunning, sent, at);
        submittedAtNs.delete(s.jobId);
      },
    });

    let seq = 0;
    const phase = async (offeredRate: number, seconds: number, label: string): Promise<PhaseResult> => {
      const ack = latencyHistogram();
      let lastSecond = latencyHistogram();
      phaseRunning = latencyHistogram();
      const result: PhaseResult = { offeredRate, seconds, sent: 0, accepted: 0, rejected: 0, errors: 0, acceptedPerSec: 0, ack, running: phaseRunning, ids: [] };
      const send = async () => {
        const spec = e2eJob(seq++);
        const sentNs = process.hrtime.bigint();
        result.sent++;
        const answered = () => {
          recordSince(ack, sentNs);
          recordSince(lastSecond, sentNs);
        };
        try {
          const { id } = await api.submit(spec);
          answered();
          result.accepted++;
          result.ids.push(id);
          const ran = runningAtNs.get(id);
          if (ran === undefined) return void submittedAtNs.set(id, sentNs);
          runningAtNs.delete(id);
          recordSince(phaseRunning, sentNs, ran);
        } catch (err) {
          // An answer other than 202 is a rejection (its latency counts); no answer at all is an error.
          if (!(err instanceof SchedulerApiError) || err.statusCode === 0) return void result.errors++;
          answered();
          result.rejected++;
        }
      };
      const run = await runOpenModel(constantProfile(offeredRate, seconds), {
        send,
        progressEveryMs: 1_000,
        onProgress: (p) => {
          if (p.sent === 0 || p.sent === p.total) return;
          progress(`  ${label}: ${result.sent} sent, ${result.accepted} accepted, ${p.inFlight} in flight, ack p99 ${percentileMs(lastSecond, 99).toFixed(1)} ms in the last second`);
          lastSecond = latencyHistogram();
        },
      });
      result.acceptedPerSec = result.accepted / run.wallS;
      await waitUntil(() => (submittedAtNs.size === 0 ? true : undefined), 30_000).catch(() => undefined);
      return result;
    };

    // Warm-up, not counted: the JIT compiles the hot paths of all three processes in the first seconds
    // at a new load; a scheduler runs for days, so the figures below are for a warmed-up system.
    await phase(Math.min(200, options.rate), 2, 'warm-up');
    await phase(options.rate, 3, 'warm-up at rate');
    const processes = { ...stack.pids, 'load generator': process.pid };
    const cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuSeconds(pid)]));
    const fixed = await phase(options.rate, options.durationS, 'fixed rate');
    const cpuPerThousandJobs = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, ((cpuSeconds(pid) - cpuBefore[name]) * 1000) / Math.max(1, fixed.accepted)]));
    const saturation = options.maxRate > 0 ? await phase(options.maxRate, options.maxDurationS, 'saturation') : undefined;

    // Lost: acknowledged jobs that did not end. Every job runs about a second, so allow a generous drain.
    const acked = new Set([...fixed.ids, ...(saturation?.ids ?? [])]);
    let lost = acked.size;
    await waitUntil(async () => {
      const done = new Set<string>();
      for (const state of TERMINAL_JOB_STATES) for await (const page of api.jobPages({ state, limit: 1000 })) for (const j of page) done.add(j.id);
      lost = [...acked].filter((id) => !done.has(id)).length;
      return lost === 0 ? true : undefined;
    }, 60_000).catch(() => undefined);
    return { nodes: options.nodes, fixed, saturation, cpuPerThousandJobs, lost, acked: acked.size };
  } finally {
    await api.close().catch(() => undefined);
    await watcher.close().catch(() => undefined);
    await stack.stop();
  }
}

const ms = percentileMs;

/** The phase as bench:e2e prints it. */
export function describePhase(r: PhaseResult, label: string): string {
  return (
    `${label}: offered ${r.offeredRate}/s for ${r.seconds}s: ${r.accepted} accepted (${Math.round(r.acceptedPerSec)}/s), ${r.rejected} rejected, ${r.errors} errors\n` +
    `  submit→ack     p50 ${ms(r.ack, 50)} ms  p99 ${ms(r.ack, 99)} ms  p99.9 ${ms(r.ack, 99.9)} ms  max ${ms(r.ack, 100)} ms\n` +
    `  submit→running p50 ${ms(r.running, 50)} ms  p99 ${ms(r.running, 99)} ms  p99.9 ${ms(r.running, 99.9)} ms  max ${ms(r.running, 100)} ms  (${r.running.totalCount} jobs)`
  );
}

/** bench:e2e's final JSON line (its field names are read by whoever tracks the figures). */
export function e2eSummary(r: E2eResult, rate: number): Record<string, number | undefined | Record<string, number>> {
  return {
    rate,
    acceptedPerSec: Math.round(Math.max(r.fixed.acceptedPerSec, r.saturation?.acceptedPerSec ?? 0)),
    ackP99Ms: ms(r.fixed.ack, 99),
    runningP99Ms: ms(r.fixed.running, 99),
    lost: r.lost,
    ackP50Ms: ms(r.fixed.ack, 50),
    runningP50Ms: ms(r.fixed.running, 50),
    fixedRateAcceptedPerSec: Math.round(r.fixed.acceptedPerSec),
    saturationOfferedRate: r.saturation?.offeredRate,
    saturationAckP99Ms: r.saturation ? ms(r.saturation.ack, 99) : undefined,
    nodes: r.nodes,
    // The same roles and unit as bench:real's (seconds per 1,000 jobs): the virtual-node agent is `agents`.
    cpuPer1000Jobs: { scheduler: round2(r.cpuPerThousandJobs.scheduler ?? 0), agents: round2(r.cpuPerThousandJobs.agent ?? 0), nats: round2(r.cpuPerThousandJobs['nats-server'] ?? 0) },
  };
}
