/**
 * Simulator at real-trace scale: replays a deep processor-level HPC trace under `fifo` and `easy-backfill`
 * and times both, with the depth of the queue the trace builds up.
 *
 *   npm run bench:sim                                         # 100,000 jobs on 8,192 processors (1,024 nodes of 8 cores)
 *   npm run bench:sim -- --jobs 100000 --procs 8192 --cores-per-node 1
 *   npm run bench:sim -- --trace ../shared/traces/lublin_256.swf
 *
 * Without --trace the trace is synthetic, built to be deep: a quarter of the jobs serial, gang sizes
 * log-uniform up to a sixteenth of the machine with powers of two favoured (`--sizes heavy`: up to a quarter,
 * no serial share), run times log-uniform from
 * 10 s to 36 h, requested times 1–5× the run time (users overestimate), and Poisson arrivals with a daily
 * cycle at an offered load of `--load` (above 1 at the daily peak, so thousands of jobs queue). It is
 * written as an SWF file (`--write`) so `npm run sim -- --trace FILE` replays the same trace. Ends with a
 * JSON line: {"jobs","procs","fifoS","easyS","totalS","fifoCpuS","easyCpuS","maxQueued","backfillDepth",...}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import type { SimResult } from '../src/sim/engine';
import { replayIsolated } from '../src/sim/isolated';
import { exponential, seededRng, type Rng } from '../src/sim/rng';
import { loadTrace } from '../src/sim/sources';

const opts = new Command()
  .option('--trace <file>', 'an SWF trace to replay instead of the synthetic one')
  .option('--jobs <n>', 'synthetic jobs', (v) => Number(v), 100_000)
  .option('--procs <n>', 'processors of the synthetic machine', (v) => Number(v), 8192)
  .option('--cores-per-node <n>', 'cores per node of the synthetic machine', (v) => Number(v), 8)
  .option('--load <x>', 'offered load of the synthetic trace (mean; the daily peak is 1.6× it)', (v) => Number(v), 0.95)
  .option('--sizes <kind>', 'job sizes of the synthetic trace: typical (a quarter serial, most parallel jobs small, as in published HPC logs) or heavy (log-uniform up to a quarter of the machine)', 'typical')
  .option('--seed <n>', 'seed of the synthetic trace', (v) => Number(v), 1)
  .option('--backfill-depth <n>', "EASY look-ahead (Slurm's bf_max_job_test); 0: unbounded", (v) => Number(v))
  .option('--write <file>', 'where to write the synthetic trace', '.data/bench/deep.swf')
  .parse()
  .opts<{ trace?: string; jobs: number; procs: number; coresPerNode: number; load: number; sizes: string; seed: number; backfillDepth?: number; write: string }>();

/** A deep synthetic processor-level trace as SWF text. */
function deepSwf(jobs: number, procs: number, coresPerNode: number, load: number, heavy: boolean, rng: Rng): string {
  // Published logs (the Parallel Workloads Archive) show a quarter or more of jobs serial and most parallel
  // jobs small, powers of two favoured; `heavy` spreads sizes log-uniformly up to a quarter of the machine.
  const maxLog = Math.log2(Math.max(1, heavy ? procs / 4 : procs / 16));
  const specs: { procs: number; runS: number; reqS: number }[] = [];
  let work = 0;
  for (let i = 0; i < jobs; i++) {
    let size = !heavy && rng() < 0.25 ? 1 : Math.max(1, Math.round(2 ** (rng() * maxLog)));
    if (rng() < 0.6) size = 2 ** Math.round(Math.log2(size));
    const runS = Math.max(1, Math.round(10 * (36 * 360) ** rng()));
    const reqS = Math.round(runS * (1 + 4 * rng()));
    specs.push({ procs: size, runS, reqS });
    work += size * runS;
  }
  // Mean arrival gap so that offered work / (procs × span) = load, modulated by a daily cycle (peak 1.6×).
  const meanGapS = work / (load * procs) / jobs;
  const lines = [`; Version: 2.2`, `; Note: synthetic deep processor-level trace (bench/sim-scale.ts), seed-reproducible`, `; MaxNodes: ${procs / coresPerNode}`, `; MaxProcs: ${procs}`];
  let t = 0;
  specs.forEach((s, i) => {
    const phase = Math.sin((2 * Math.PI * t) / 86_400);
    t += exponential(rng, meanGapS / (1 + 0.6 * phase));
    lines.push([i + 1, Math.round(t), -1, s.runS, s.procs, -1, -1, s.procs, s.reqS, -1, 1, 1 + (i % 97), 1, -1, 1, 1, -1, -1].join(' '));
  });
  return `${lines.join('\n')}\n`;
}

let source = opts.trace;
if (!source) {
  mkdirSync(dirname(opts.write), { recursive: true });
  writeFileSync(opts.write, deepSwf(opts.jobs, opts.procs, opts.coresPerNode, opts.load, opts.sizes === 'heavy', seededRng(opts.seed)));
  source = opts.write;
}
const trace = loadTrace(source, { jobs: 0, nodes: 0, load: 0, seed: 1 });
const results: Record<string, SimResult> = {};
// CPU seconds beside wall seconds: on a machine busy with other work, wall time says little.
const cpuS: Record<string, number> = {};
for (const name of ['fifo', 'easy-backfill']) {
  // Each policy in a fresh process: the second replay does not run on the heap the first left behind.
  const backfillDepth = opts.backfillDepth === undefined ? undefined : opts.backfillDepth > 0 ? opts.backfillDepth : null;
  const { result: r, cpuS: cpu } = await replayIsolated({ trace: source, synthetic: { jobs: 0, nodes: 0, load: 0, seed: 1 }, policy: name, backfillDepth, options: { samples: 400 } });
  cpuS[name] = cpu;
  results[name] = r;
  const maxQueued = Math.max(...r.timeline.pending.super);
  process.stderr.write(`${name.padEnd(14)} ${(r.wallMs / 1000).toFixed(1)} s  ${r.jobsPerSec} jobs/s  mean wait ${r.waitS.mean} s  bounded slowdown ${r.boundedSlowdown.mean}  utilisation ${r.utilisation}  most queued (sampled) ${maxQueued}\n`);
}
const fifo = results.fifo;
const easy = results['easy-backfill'];
console.log(
  JSON.stringify({
    trace: source,
    jobs: trace.jobs.length,
    procs: trace.cluster!.reduce((n, node) => n + node.capacity.cpuMillis / 1000, 0),
    nodes: trace.cluster!.length,
    fifoS: Math.round(fifo.wallMs) / 1000,
    easyS: Math.round(easy.wallMs) / 1000,
    totalS: Math.round(fifo.wallMs + easy.wallMs) / 1000,
    fifoCpuS: cpuS.fifo,
    easyCpuS: cpuS['easy-backfill'],
    maxQueued: Math.max(...fifo.timeline.pending.super, ...easy.timeline.pending.super),
    backfillDepth: easy.backfillDepth,
    fifoBoundedSlowdown: fifo.boundedSlowdown.mean,
    easyBoundedSlowdown: easy.boundedSlowdown.mean,
    fifoUtilisation: fifo.utilisation,
    easyUtilisation: easy.utilisation,
  }),
);
