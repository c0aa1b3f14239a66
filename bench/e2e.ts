/**
 * End-to-end benchmark: nats-server, the scheduler and an agent simulating 1,000 nodes, each a separate
 * process on this machine; a load generator here submits jobs over HTTP at a fixed rate (open model:
 * requests go out on schedule whether or not earlier ones have been answered) and watches agents' status
 * reports on NATS.
 *
 *   npm run bench:e2e                              # 1,000 jobs/s for 10 s, then the highest accepted rate
 *   npm run bench:e2e -- --rate 1500 --duration 20 --max-rate 0
 *
 * Prints submit-to-ack and submit-to-running latency (hdr-histogram-js), accepted jobs per second, and
 * whether any acknowledged job was lost (did not end within the drain time). The final line is JSON:
 * {"rate":...,"acceptedPerSec":...,"ackP99Ms":...,"runningP99Ms":...,"lost":0,...}. `rate`, `ackP99Ms`
 * and `runningP99Ms` are from the fixed-rate phase; `acceptedPerSec` is the highest throughput measured
 * (the saturation phase when it runs, else the fixed-rate phase). A warm-up (2 s at 200/s, 3 s at the
 * rate) comes first and is not counted.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import { connectNats } from '../src/store/nats';
import { startLocalStack } from '../src/local/stack';
import { waitUntil } from '../src/local/wait';
import { subjects, type JobSpecInput, type JobState, type StatusReport } from '../src/protocol';

const GiB = 1024 ** 3;
const program = new Command()
  .name('bench:e2e')
  .option('--rate <n>', 'fixed submission rate, jobs per second', '1000')
  .option('--duration <s>', 'seconds of fixed-rate load', '10')
  .option('--max-rate <n>', 'offered rate of the saturation phase (0 skips it)', '5000')
  .option('--max-duration <s>', 'seconds of the saturation phase', '5')
  .option('--nodes <n>', 'simulated nodes', '1000')
  .option('--connections <n>', 'HTTP connections of the load generator', '64')
  .parse();
const opts = program.opts();
const rate = Number(opts.rate);
const nodes = Number(opts.nodes);

/** A mixed job: mostly general, some GPU work, a few whole HPC nodes; each runs about a second. */
function jobSpec(i: number): JobSpecInput {
  const kind = i % 10;
  if (kind < 6) return { pool: 'general', resources: { cpuMillis: 1000 + (i % 4) * 1000, memBytes: 2 * GiB }, durationSeconds: 1 };
  if (kind < 9) return { pool: 'intelligent', resources: { cpuMillis: 8000, memBytes: 32 * GiB, gpus: 1 + (i % 2) }, durationSeconds: 1 };
  return { pool: 'super', resources: { cpuMillis: 64_000, memBytes: 64 * GiB }, walltimeSeconds: 60, durationSeconds: 0 };
}

interface PhaseResult {
  offeredRate: number;
  seconds: number;
  sent: number;
  accepted: number;
  rejected: number;
  errors: number;
  acceptedPerSec: number;
  ack: hdr.Histogram;
  running: hdr.Histogram;
  ids: string[];
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

process.stderr.write(`waiting for ${nodes} simulated nodes to register…\n`);
const stack = await startLocalStack({ nodes, prefix: 'bench', tenants: [{ name: 'bench', requestsPerSecond: 1_000_000 }] });
const auth = { authorization: `Bearer ${stack.tokens.bench}` };
const pool = new Pool(stack.url, { connections: Number(opts.connections), pipelining: 1 });
const watcher = await connectNats(stack.natsUrl, 'bench-watcher');

async function shutdown(): Promise<void> {
  await pool.close().catch(() => undefined);
  await watcher.close().catch(() => undefined);
  await stack.stop();
}

try {
  // Submit-to-running: the first `running` report of a job, matched with its submission time.
  const submittedAtNs = new Map<string, bigint>();
  const runningAtNs = new Map<string, bigint>();
  let phaseRunning = histogram();
  const recordRunning = (jobId: string, at: bigint) => {
    const sent = submittedAtNs.get(jobId);
    if (sent === undefined) return void runningAtNs.set(jobId, at);
    phaseRunning.recordValue(Math.max(1, Number((at - sent) / 1000n)));
    submittedAtNs.delete(jobId);
  };
  watcher.subscribe(subjects.allStatus, {
    callback: (err, msg) => {
      if (err) return;
      const at = process.hrtime.bigint();
      // A light check rather than the zod schema: the load generator's own CPU counts against the machine.
      const s = msg.json<Partial<StatusReport>>();
      if (s.state === 'running' && s.taskIndex === 0 && typeof s.jobId === 'string' && s.attemptId === `${s.jobId}-a1`) recordRunning(s.jobId, at);
    },
  });

  let seq = 0;
  async function phase(offeredRate: number, seconds: number, label: string): Promise<PhaseResult> {
    const ack = histogram();
    let window = histogram();
    phaseRunning = histogram();
    const result: PhaseResult = { offeredRate, seconds, sent: 0, accepted: 0, rejected: 0, errors: 0, acceptedPerSec: 0, ack, running: phaseRunning, ids: [] };
    const total = Math.round(offeredRate * seconds);
    const startNs = process.hrtime.bigint();
    const inFlight = new Set<Promise<void>>();
    let lastReport = 0;
    for (let i = 0; i < total; i++) {
      const dueNs = startNs + BigInt(Math.round((i * 1e9) / offeredRate));
      const waitMs = Number(dueNs - process.hrtime.bigint()) / 1e6;
      if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
      const body = JSON.stringify(jobSpec(seq++));
      const sentNs = process.hrtime.bigint();
      result.sent++;
      const p = pool
        .request({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json', ...auth }, body })
        .then(async (res) => {
          const text = await res.body.text();
          const doneNs = process.hrtime.bigint();
          ack.recordValue(Math.max(1, Number((doneNs - sentNs) / 1000n)));
          window.recordValue(Math.max(1, Number((doneNs - sentNs) / 1000n)));
          if (res.statusCode !== 202) {
            result.rejected++;
            return;
          }
          result.accepted++;
          const { id } = JSON.parse(text) as { id: string };
          result.ids.push(id);
          const ran = runningAtNs.get(id);
          if (ran !== undefined) {
            runningAtNs.delete(id);
            phaseRunning.recordValue(Math.max(1, Number((ran - sentNs) / 1000n)));
          } else submittedAtNs.set(id, sentNs);
        })
        .catch(() => void result.errors++);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      const elapsedS = Number(process.hrtime.bigint() - startNs) / 1e9;
      if (elapsedS - lastReport >= 1) {
        lastReport = elapsedS;
        process.stderr.write(`  ${label}: ${result.sent} sent, ${result.accepted} accepted, ${inFlight.size} in flight, ack p99 ${(window.getValueAtPercentile(99) / 1000).toFixed(1)} ms in the last second\n`);
        window = histogram();
      }
    }
    await Promise.all(inFlight);
    const elapsedS = Number(process.hrtime.bigint() - startNs) / 1e9;
    result.acceptedPerSec = result.accepted / elapsedS;
    await waitUntil(() => (submittedAtNs.size === 0 ? true : undefined), 30_000).catch(() => undefined);
    return result;
  }

  const ms = (h: hdr.Histogram, p: number) => Math.round((h.getValueAtPercentile(p) / 1000) * 100) / 100;
  const describe = (r: PhaseResult, label: string) =>
    `${label}: offered ${r.offeredRate}/s for ${r.seconds}s: ${r.accepted} accepted (${Math.round(r.acceptedPerSec)}/s), ${r.rejected} rejected, ${r.errors} errors\n` +
    `  submit→ack     p50 ${ms(r.ack, 50)} ms  p99 ${ms(r.ack, 99)} ms  p99.9 ${ms(r.ack, 99.9)} ms  max ${ms(r.ack, 100)} ms\n` +
    `  submit→running p50 ${ms(r.running, 50)} ms  p99 ${ms(r.running, 99)} ms  p99.9 ${ms(r.running, 99.9)} ms  max ${ms(r.running, 100)} ms  (${r.running.totalCount} jobs)`;

  // Warm-up, not counted: the JIT compiles the hot paths of all three processes in the first seconds
  // at a new load; a scheduler runs for days, so the figures below are for a warmed-up system.
  await phase(Math.min(200, rate), 2, 'warm-up');
  await phase(rate, 3, 'warm-up at rate');
  const processes = { ...stack.pids, 'load generator': process.pid };
  const cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const fixed = await phase(rate, Number(opts.duration), 'fixed rate');
  console.log(describe(fixed, 'fixed rate'));
  console.log(
    `  CPU per 1,000 jobs: ${Object.entries(processes)
      .map(([name, pid]) => `${name} ${(((cpuSeconds(pid) - cpuBefore[name]) * 1000) / Math.max(1, fixed.accepted)).toFixed(2)} s`)
      .join(', ')}`,
  );
  const saturation = Number(opts.maxRate) > 0 ? await phase(Number(opts.maxRate), Number(opts.maxDuration), 'saturation') : undefined;
  if (saturation) console.log(describe(saturation, 'saturation'));

  // Lost: acknowledged jobs that did not end. Every job runs about a second, so allow a generous drain.
  const acked = new Set([...fixed.ids, ...(saturation?.ids ?? [])]);
  const terminal: JobState[] = ['succeeded', 'failed', 'cancelled'];
  let unfinished = acked.size;
  await waitUntil(
    async () => {
      const done = new Set<string>();
      for (const state of terminal) {
        let cursor: string | undefined;
        do {
          const res = await fetch(`${stack.url}/v1/jobs?state=${state}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth });
          const page = (await res.json()) as { items: { id: string }[]; nextCursor?: string };
          for (const j of page.items) done.add(j.id);
          cursor = page.nextCursor;
        } while (cursor);
      }
      unfinished = [...acked].filter((id) => !done.has(id)).length;
      return unfinished === 0 ? true : undefined;
    },
    60_000,
  ).catch(() => undefined);
  console.log(`lost (acknowledged, not finished 60 s after the load): ${unfinished} of ${acked.size}`);
  console.log(
    JSON.stringify({
      rate,
      acceptedPerSec: Math.round(Math.max(fixed.acceptedPerSec, saturation?.acceptedPerSec ?? 0)),
      ackP99Ms: ms(fixed.ack, 99),
      runningP99Ms: ms(fixed.running, 99),
      lost: unfinished,
      ackP50Ms: ms(fixed.ack, 50),
      runningP50Ms: ms(fixed.running, 50),
      fixedRateAcceptedPerSec: Math.round(fixed.acceptedPerSec),
      saturationOfferedRate: saturation?.offeredRate,
      saturationAckP99Ms: saturation ? ms(saturation.ack, 99) : undefined,
      nodes,
    }),
  );
} finally {
  await shutdown();
}
