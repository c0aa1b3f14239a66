/**
 * The trace-replay simulator: what would a different cluster or policy do to a real workload?
 *
 *   npm run sim -- --trace ../shared/traces/lublin_256.swf --policy fifo,easy-backfill
 *   npm run sim -- --trace synthetic:poisson --jobs 100000 --nodes 10000 --policy fifo,easy-backfill,green-aware
 *   npm run sim -- --trace pods.csv --cluster configs/sim/qingyang.yaml --policy binpack,spread --json
 *   npm run sim -- --trace ../shared/traces/alibaba_openb_pod_list_default.csv --mode fill --policy binpack,fgd --repeat 10
 *
 * Prints a comparison table and writes report.json and report.html; the last line of stdout is one JSON
 * object with the headline figures per policy (with --json it is the only line). `--mode fill` measures
 * placement quality alone (src/sim/fill.ts) instead of replaying the trace in time.
 */
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { runLimited } from '../concurrency';
import { MultiBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import type { NodeSpec } from '../protocol';
import { carbonSignal, loadClusterFile, nodesOf, type ClusterFile } from './cluster-file';
import type { SimResult } from './engine';
import { replayIsolated } from './isolated';
import { fill } from './fill';
import { fillHeadline, formatFillTable, summarise, writeFillReports, type FillReport } from './fill-report';
import { SIM_POLICIES, policiesNamed, processorLevel, type SimPolicy } from './policies';
import { number, positiveInt } from './flags';
import { formatTable, headline, writeReports, type SimReport } from './report';
import { loadTrace } from './sources';
import type { TimedJob } from './synthetic';

const modeOf = (v: string): 'replay' | 'fill' => {
  if (v !== 'replay' && v !== 'fill') throw new InvalidArgumentError('--mode must be replay or fill');
  return v;
};

const program = new Command()
  .name('sim')
  .description('Replay a workload trace through the scheduler core under several policies and compare them.')
  .requiredOption('--trace <file>', 'SWF (.swf, .swf.gz), GPU-cluster CSV (.csv), or synthetic:poisson|bursty|uniform')
  .option('--cluster <file>', 'cluster definition (YAML); default: the machine the trace describes')
  .option('--carbon <file>', "the grid's carbon intensity over time (CSV such as Time,Carbon Intensity); time 0 is its start, or --carbon-start")
  .option('--carbon-start <date>', 'the time in the carbon file where the replay begins')
  .option('--mode <mode>', 'replay: the trace in virtual time; fill: sampled tasks placed without departures until they request the GPU capacity (FGD\'s measure)', modeOf, 'replay')
  .option('--repeat <n>', 'fill: run seeds seed, seed+1, … seed+n−1 and report the mean and spread', positiveInt('--repeat'), 1)
  .option('--policy <list>', `comma-separated policies: ${Object.keys(SIM_POLICIES).join(', ')}`, 'fifo,easy-backfill')
  .option('--json', 'print only the final JSON line on stdout (the table goes to stderr)')
  .option('--out <dir>', 'where to write report.json and report.html (default .data/sim/<trace>-<time>)')
  .option('--limit <n>', 'replay only the first n jobs of the trace', positiveInt('--limit'))
  .option('--jobs <n>', 'synthetic: jobs to generate', positiveInt('--jobs'), 100_000)
  .option('--nodes <n>', 'synthetic: nodes of the built-in mixed cluster', positiveInt('--nodes'), 1000)
  .option('--load <x>', 'synthetic: offered load as a share of capacity', number('--load', 0), 0.9)
  .option('--seed <n>', 'seed of synthetic workloads, node failures and fill sampling', positiveInt('--seed'), 1)
  .option('--backfill-interval <s>', "seconds between EASY backfill passes (Slurm's bf_interval); 0 backfills at every event", number('--backfill-interval', 0), 0)
  .option('--samples <n>', 'points of the charts over time', positiveInt('--samples'), 200)
  .option('--parallel <n>', 'policies replayed at once, each in a process of its own (default: the CPUs of this machine)', positiveInt('--parallel'), availableParallelism())
  .option('--no-progress', 'no progress bar')
  .showHelpAfterError()
  .parse();

const opts = program.opts<{
  trace: string;
  mode: 'replay' | 'fill';
  repeat: number;
  cluster?: string;
  carbon?: string;
  carbonStart?: string;
  policy: string;
  json?: boolean;
  out?: string;
  limit?: number;
  jobs: number;
  nodes: number;
  load: number;
  seed: number;
  backfillInterval: number;
  samples: number;
  parallel: number;
  progress: boolean;
}>();

async function main(): Promise<void> {
  const policies = policiesNamed(opts.policy);
  if (policies.length === 0) throw new Error('--policy names no policy');
  const synthetic = { jobs: opts.jobs, nodes: opts.nodes, load: opts.load, seed: opts.seed };
  const trace = loadTrace(opts.trace, synthetic);
  const jobs = opts.limit ? trace.jobs.slice(0, opts.limit) : trace.jobs;
  const clusterFile: ClusterFile | undefined = opts.cluster ? loadClusterFile(opts.cluster) : undefined;
  const nodes: NodeSpec[] | undefined = clusterFile ? nodesOf(clusterFile) : trace.cluster;
  if (!nodes) throw new Error(`${opts.trace} does not describe its cluster (no MaxNodes/MaxProcs header, no node list beside it): pass --cluster FILE`);
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  const out = opts.out ?? join('.data', 'sim', `${basename(trace.name).replace(/[^A-Za-z0-9._-]+/g, '_')}${opts.mode === 'fill' ? '-fill' : ''}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const clusterName = clusterFile?.name ?? (opts.trace.startsWith('synthetic:') ? `mixed-${opts.nodes}` : `from ${trace.name}`);
  if (opts.mode === 'fill') {
    runFill(policies, jobs, nodes, clusterName, trace.name, out, log);
    return;
  }
  // Each replay reads the carbon file again in its own process: a bad one is refused here first.
  if (opts.carbon) carbonSignal(opts.carbon, opts.carbonStart);
  const showProgress = opts.progress && process.stderr.isTTY;

  // Each policy in a process of its own, as independent replays should be (none runs on another's garbage),
  // and as many at once as --parallel allows.
  const results: SimResult[] = new Array(policies.length);
  const bars = showProgress ? new MultiBar({ format: '{policy} {bar} {value}/{total} jobs arrived', hideCursor: true, clearOnComplete: true }, Presets.shades_classic) : undefined;
  const startedMs = Date.now();
  await runLimited(opts.parallel, policies.length, async (i) => {
    const base = policies[i];
    const policy = trace.processorLevel ? processorLevel(base) : base;
    const bar = bars?.create(jobs.length, 0, { policy: policy.name.padEnd(14) });
    const { result } = await replayIsolated(
      { trace: opts.trace, synthetic, limit: opts.limit, cluster: opts.cluster, carbon: opts.carbon, carbonStart: opts.carbonStart, policy: policy.name, options: { seed: opts.seed, samples: opts.samples, backfillIntervalMs: opts.backfillInterval * 1000 } },
      (n) => bar?.update(n),
    );
    if (bar) bars?.remove(bar);
    log(`${policy.name}: ${jobs.length} jobs in ${(result.wallMs / 1000).toFixed(1)} s (${result.jobsPerSec} jobs/s)`);
    results[i] = result;
  });
  bars?.stop();
  if (policies.length > 1) log(`${policies.length} policies in ${((Date.now() - startedMs) / 1000).toFixed(1)} s, ${Math.min(opts.parallel, policies.length)} at a time`);
  const wallMs = results.reduce((sum, r) => sum + r.wallMs, 0);

  const byPool: Record<string, number> = {};
  for (const n of nodes) byPool[n.pool] = (byPool[n.pool] ?? 0) + 1;
  const report: SimReport = {
    trace: trace.name,
    cluster: { name: clusterName, nodes: nodes.length, byPool },
    jobs: jobs.length,
    skipped: trace.skipped,
    jobsPerSec: Math.round((jobs.length * policies.length) / Math.max(1e-3, wallMs / 1000)),
    results,
  };
  const files = writeReports(report, out);
  log(formatTable(report));
  log(`reports: ${files.json}, ${files.html}`);
  process.stdout.write(`${JSON.stringify(headline(report))}\n`);
}

/** Fill mode: every policy on the same samples, one per seed. */
function runFill(policies: SimPolicy[], jobs: TimedJob[], nodes: NodeSpec[], clusterName: string, traceName: string, out: string, log: (line: string) => void): void {
  const seeds = Array.from({ length: opts.repeat }, (_, i) => opts.seed + i);
  const summaries = policies.map((policy) => {
    const runs = seeds.map((seed) => fill(jobs, nodes, policy, { seed }));
    log(`${policy.name}: unallocated GPU share ${runs.map((r) => r.unallocatedGpuShare).join(', ')} (seeds ${seeds.join(', ')})`);
    return summarise(runs);
  });
  const report: FillReport = { trace: traceName, cluster: { name: clusterName, nodes: nodes.length, gpus: nodes.reduce((sum, n) => sum + (n.allocatable ?? n.capacity).gpus, 0) }, seeds, summaries };
  const files = writeFillReports(report, out);
  log(formatFillTable(report));
  log(`reports: ${files.json}, ${files.html}`);
  process.stdout.write(`${JSON.stringify(fillHeadline(report))}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`sim: ${err.message}\n`);
  process.exit(2);
});
