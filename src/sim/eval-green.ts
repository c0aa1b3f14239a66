/**
 * The green evaluation: what does green-aware scheduling save on a real carbon-intensity trace, with the
 * forecast it would have live, against what a perfect forecast would save (the oracle)?
 *
 *   npm run eval:green -- --carbon ../shared/traces/gb_ci.csv
 *   npm run eval:green -- --carbon ../shared/traces/gb_ci.csv --windows 12 --days 2 --nodes 60 --json
 *
 * One synthetic workload (a share of it deferrable, each with a deadline some hours past its walltime) runs
 * on the same cluster and signals as green-blind, green-spatial (placement prefers greener zones),
 * green-aware planning with a live forecaster (`--forecaster`, fed the grid's intensity as time goes on,
 * warmed up on the days before the window), and green-aware planning with the recorded future (oracle).
 * `--windows N` repeats this over N start dates spread across the trace (whole days, after the warm-up),
 * so every season is in the figures. The grid's intensity comes from the trace, each zone's own green share
 * from the cluster file, node failures too (`--no-failures` leaves them out); the part of a zone's power
 * that is not green is charged at the grid's intensity. The runs of each window on each workload go to
 * `--parallel` processes (eval-green-worker.ts), which make the same workloads from the same settings. Prints
 * a table per window, writes report.json and report.html (savings per window beside the oracle's) to `--out`,
 * and ends with one JSON line.
 */
import { availableParallelism, freemem } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { count, number, positiveInt } from './flags';
import { spread } from './recorder';
import { EvalGreenRuns, NOISE_JITTER_MS, forkRuns, type EvalGreenSettings, type RunFigures, type WorkloadRuns } from './eval-green-runs';
import { runLimited } from '../concurrency';
import { DEFAULT_DEFERRAL_SHARES, formatDeferralShares, parseDeferralShares, type Series } from '../green';
import { DAY_MS } from '../time';
import { POOLS, type Pool } from '../protocol';
import { round, summarise, waitedBeyondNoise, writeGreenReports, type GreenWindow, type PoolWait } from './eval-green-report';

const deferralShares = (v: string) => {
  try {
    return parseDeferralShares(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

const opts = new Command()
  .name('eval:green')
  .description('Compare green-blind, green-spatial and green-aware scheduling (live forecast and oracle) on a carbon-intensity trace.')
  .requiredOption('--carbon <file>', 'grid carbon intensity over time (CSV with the columns Time,Carbon Intensity)')
  .option('--carbon-column <name>', "the trace's column of carbon intensity, in gCO2/kWh (default: found by its header)")
  .option('--cluster <file>', "zones' own green share by hour, prices, failures (the nodes are the built-in mixed cluster)", 'configs/sim/qingyang.yaml')
  .option('--start <date>', 'the trace time where the run begins, with one window (default: the start of the trace)')
  .option('--windows <n>', 'runs over this many start dates spread across the trace', number('--windows', 1), 1)
  .option('--days <n>', 'days of arrivals', number('--days', 0.1), 7)
  .option('--nodes <n>', 'nodes of the built-in mixed cluster', number('--nodes', 10), 200)
  .option('--load <x>', 'offered load as a share of capacity', number('--load', 0.01), 0.6)
  .option('--deferrable-share <x>', 'share of jobs that are deferrable', number('--deferrable-share', 0), 0.5)
  .option('--deferral-share <x>', "share of a pool deferred jobs may book in any one step, for every pool (0.2) or per pool (0.2,intelligent=0, the default), as the service's QY_GREEN_DEFERRAL_SHARE", deferralShares, DEFAULT_DEFERRAL_SHARES)
  .option('--window-hours <h>', "how long past its walltime a deferrable job's deadline is", number('--window-hours', 0), 12)
  .option('--forecaster <name>', 'the live forecaster: persistence, fitted-persistence, seasonal-day, seasonal-week, profile or blend', 'blend')
  .option('--published-error <g>', "a grid operator's published forecast blended in as the service blends QY_CARBON_FORECAST_URL's: a stand-in, the trace's future plus an error growing with the horizon, this many gCO2/kWh off on average over 48 h (National Grid's measured 24.7); 0: none", number('--published-error', 0), 0)
  .option('--warmup-days <d>', 'days of the trace before each window the live forecaster is shown first', number('--warmup-days', 0), 7)
  .option('--no-failures', "leave out the cluster file's random node failures")
  .option('--mtbf-hours <h>', "mean time between failures of one node, instead of the cluster file's (a stress test of the deadlines)", number('--mtbf-hours', 1))
  .option('--grid-only', "zones draw grid power only (the cluster file's own green shares left out): every saving then rests on forecasting the grid")
  .option('--seed <n>', 'seed of the workload and of node failures', number('--seed', 1), 1)
  .option('--noise-runs <n>', "green-blind, green-aware and the oracle run again with deferrable jobs arriving up to a minute later: the noise of other jobs' wait and of what a window emits", count('--noise-runs'), 8)
  .option('--parallel <n>', "processes the runs are made in, each a window's run on one workload at a time (default: the machine's cores, as many as free memory holds; 1: this process only)", positiveInt('--parallel'))
  .option('--out <dir>', 'where to write report.json and report.html (default .data/eval-green/<time>)')
  .option('--json', 'print only the final JSON line on stdout')
  .showHelpAfterError()
  .parse()
  .opts<EvalGreenSettings & { start?: string; windows: number; parallel?: number; out?: string; json?: boolean }>();

/**
 * The windows' start times: `--start` (or the trace's start) for one window; else N whole days spread evenly
 * from the end of the first warm-up to the last start that leaves the window and its drain inside the trace.
 */
function windowStarts(series: Series): number[] {
  if (opts.windows === 1) {
    const startMs = opts.start ? Date.parse(opts.start) : series.startMs;
    if (!Number.isFinite(startMs)) throw new Error(`${opts.start}: not a date`);
    return [startMs];
  }
  if (opts.start) throw new Error('--start names one window; with --windows the starts are spread across the trace');
  const first = Math.ceil((series.startMs + opts.warmupDays * DAY_MS) / DAY_MS) * DAY_MS;
  const last = Math.floor((series.endMs - (opts.days + 2) * DAY_MS) / DAY_MS) * DAY_MS;
  if (last < first) throw new Error(`${opts.carbon}: too short for a window of ${opts.days} days after ${opts.warmupDays} days of warm-up`);
  return Array.from({ length: opts.windows }, (_, i) => first + Math.round(((last - first) * i) / Math.max(1, opts.windows - 1) / DAY_MS) * DAY_MS);
}

/**
 * Carbon saved against green-blind, judged by what the work emits: its draw above idle times the intensity
 * (`workCarbonPerJobG`). Metering charges each task its share of its node's whole draw, idle included, so
 * jobs started together on busier nodes are charged more of an idle draw the cluster pays either way; judged
 * by that, a schedule that emitted less could look as if it emitted more (seen: −0.03% in a window whose
 * cluster emitted less).
 */
const savedPct = (r: RunFigures, blind: RunFigures) => (blind.energy.workCarbonPerJobG > 0 ? Math.round((1 - r.energy.workCarbonPerJobG / blind.energy.workCarbonPerJobG) * 10_000) / 100 : 0);

/**
 * Other jobs' wait from green-blind's and green-aware's on each workload (the window's first): green-blind's
 * band, and the pairs.
 */
function waitsOf(blind: readonly number[], aware: readonly number[]): PoolWait {
  const band = spread(blind);
  const extra = spread(aware.map((a, i) => a - blind[i]));
  return { othersMeanWaitS: aware[0], baselineOthersMeanWaitS: blind[0], baselineOthersWaitMeanS: round(band.mean), baselineOthersWaitSdS: round(band.stdev), othersWaitExtraMeanS: round(extra.mean), othersWaitExtraSdS: round(extra.stdev) };
}

/**
 * One window's figures from its runs (`outcomes[k]`: the runs on workload k, the window's own first, then each
 * noise run's), its table and lines logged.
 */
function windowOf(startMs: number, outcomes: readonly WorkloadRuns[], log: (line: string) => void): GreenWindow {
  const [own] = outcomes;
  const runs = { blind: own.blind, spatial: own.spatial!, aware: own.aware, oracle: own.oracle };
  const results = [runs.blind, runs.spatial, runs.aware, runs.oracle];
  // Green-blind and green-aware on the window's workload and again on each noise run's: the band a wait within
  // noise falls in, and each workload's two waits and two emissions compared (green-aware's own run is noisy too).
  const blindRuns = outcomes.map((o) => o.blind);
  const awareRuns = outcomes.map((o) => o.aware);
  const blindWaits = blindRuns.map((r) => r.deferrable.othersMeanWaitS);
  const awareWaits = awareRuns.map((r) => r.deferrable.othersMeanWaitS);
  const pairs = awareWaits.map((a, i): [number, number] => [a, blindWaits[i]]);
  const savedPairs = awareRuns.map((r, i) => savedPct(r, blindRuns[i]));
  // The oracle on the same workloads, so that the live forecaster's share of its saving is taken over them too.
  const oracleSavedPairs = outcomes.map((o, i) => savedPct(o.oracle, blindRuns[i]));
  const start = new Date(startMs).toISOString().slice(0, 10);
  log(`window from ${start}:`);
  const rows: [string, (r: RunFigures) => string | number][] = [
    ['carbon per job, work (g)', (r) => r.energy.workCarbonPerJobG],
    ['carbon per job, metered (g)', (r) => r.energy.carbonPerJobG],
    ['carbon saved vs green-blind', (r) => `${savedPct(r, runs.blind)}%`],
    ['green share of jobs’ energy', (r) => `${(r.energy.jobGreenShare * 100).toFixed(1)}%`],
    ['jobs’ energy (kWh)', (r) => r.energy.jobKwh],
    ['deferrable jobs', (r) => r.deferrable.jobs],
    ['  mean delay (s)', (r) => r.deferrable.meanDelayS],
    ['  deadline misses', (r) => r.deferrable.deadlineMisses],
    ['other jobs: mean wait (s)', (r) => r.deferrable.othersMeanWaitS],
    ...POOLS.map((pool): [string, (r: RunFigures) => string | number] => [`  in ${pool}`, (r) => r.deferrable.othersMeanWaitSByPool[pool] ?? '–']),
    ['jobs completed', (r) => r.jobs.completed],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  log(`${''.padEnd(width)}  ${results.map((r) => r.policy.padStart(14)).join('')}`);
  for (const [label, f] of rows) log(`${label.padEnd(width)}  ${results.map((r) => String(f(r)).padStart(14)).join('')}`);
  const waits = waitsOf(blindWaits, awareWaits);
  const saved = spread(savedPairs);
  // The same, pool by pool: the pools' means mix waits of seconds (a CPU job) with waits of minutes (a gang of
  // GPU servers), and a pool whose jobs wait longer can hide behind one where nothing is deferred.
  const byPool = POOLS.flatMap((pool): [Pool, PoolWait][] => {
    const blind = blindRuns.map((r) => r.deferrable.othersMeanWaitSByPool[pool]);
    const aware = awareRuns.map((r) => r.deferrable.othersMeanWaitSByPool[pool]);
    const ranInEvery = (ws: (number | undefined)[]): ws is number[] => ws.every((w) => w !== undefined);
    return ranInEvery(blind) && ranInEvery(aware) ? [[pool, waitsOf(blind, aware)]] : [];
  });
  if (outcomes.length > 1) {
    log(`other jobs: mean wait (s) under green-blind, deferrable jobs arriving up to ${NOISE_JITTER_MS / 1000} s later: ${blindWaits.join(', ')} (mean ${waits.baselineOthersWaitMeanS}, sd ${waits.baselineOthersWaitSdS})`);
    log(`the same under green-aware: ${awareWaits.join(', ')}; green-aware minus green-blind, workload by workload: mean ${waits.othersWaitExtraMeanS} s, sd ${waits.othersWaitExtraSdS} s, longer in ${pairs.filter(([a, b]) => a > b).length} of ${pairs.length}`);
    log(`carbon saved by green-aware against green-blind, workload by workload: ${savedPairs.map((x) => `${x}%`).join(', ')} (mean ${round(saved.mean)}%, sd ${round(saved.stdev)}%)`);
    log(`the same by the oracle: ${oracleSavedPairs.map((x) => `${x}%`).join(', ')} (mean ${round(spread(oracleSavedPairs).mean)}%)`);
    for (const [pool, w] of byPool) {
      log(`  other jobs in ${pool}: green-blind ${w.baselineOthersWaitMeanS} ± ${w.baselineOthersWaitSdS} s; green-aware minus green-blind, workload by workload: mean ${w.othersWaitExtraMeanS} s, sd ${w.othersWaitExtraSdS} s${waitedBeyondNoise(w) ? ' (beyond noise)' : ''}`);
    }
  }
  return {
    start,
    savedPct: savedPct(runs.aware, runs.blind),
    oracleSavedPct: savedPct(runs.oracle, runs.blind),
    spatialSavedPct: savedPct(runs.spatial, runs.blind),
    carbonPerJobG: runs.aware.energy.workCarbonPerJobG,
    baselineCarbonPerJobG: runs.blind.energy.workCarbonPerJobG,
    oracleCarbonPerJobG: runs.oracle.energy.workCarbonPerJobG,
    greenShare: runs.aware.energy.jobGreenShare,
    baselineGreenShare: runs.blind.energy.jobGreenShare,
    meanDelayS: runs.aware.deferrable.meanDelayS,
    deadlineMisses: runs.aware.deferrable.deadlineMisses,
    oracleDeadlineMisses: runs.oracle.deferrable.deadlineMisses,
    ...waits,
    othersWaitPairs: pairs,
    savedPairsMeanPct: round(saved.mean),
    savedPairsSdPct: round(saved.stdev),
    savedPairs,
    oracleSavedPairsMeanPct: round(spread(oracleSavedPairs).mean),
    othersWaitByPool: Object.fromEntries(byPool),
    deferrableJobs: runs.aware.deferrable.jobs,
  };
}

/**
 * About what a process making runs holds: its workloads, the runs' own state, the runtime. Measured 1.1–1.4 GB
 * per process at the defaults (188,361 jobs, as many earlier arrivals); `--parallel` by default runs no more
 * processes than free memory holds, so that a machine of many cores does not run out of it.
 */
const processBytes = (runs: EvalGreenRuns) => 128 * 2 ** 20 + (runs.jobs.length + runs.warmWork.length) * 4096;

/**
 * The runs of every window on every workload, `parallel` processes at a time (in this one when 1), each
 * window's figures made, in order, once all its runs are in (`onWindow`).
 */
async function runWindows(runs: EvalGreenRuns, starts: readonly number[], parallel: number, onWindow: (startMs: number, outcomes: WorkloadRuns[]) => void): Promise<void> {
  const tasks = starts.flatMap((startMs, w) => Array.from({ length: runs.workloads }, (_, workload) => ({ w, startMs, workload })));
  const outcomes = starts.map(() => Array.from({ length: runs.workloads }, (): WorkloadRuns | undefined => undefined));
  let flushed = 0;
  const done = (task: number, result: WorkloadRuns) => {
    const { w, workload } = tasks[task];
    outcomes[w][workload] = result;
    while (flushed < starts.length && outcomes[flushed].every((o) => o !== undefined)) {
      onWindow(starts[flushed], outcomes[flushed] as WorkloadRuns[]);
      flushed++;
    }
  };
  if (parallel <= 1) {
    tasks.forEach(({ startMs, workload }, task) => done(task, runs.run(startMs, workload)));
    return;
  }
  // Each process makes one run at a time: runLimited hands the next task to whichever is free.
  const processes = await Promise.all(Array.from({ length: Math.min(parallel, tasks.length) }, () => forkRuns(opts)));
  const idle = [...processes];
  try {
    await runLimited(processes.length, tasks.length, async (task) => {
      const runsProcess = idle.pop()!;
      try {
        done(task, await runsProcess.run(tasks[task].startMs, tasks[task].workload));
      } finally {
        idle.push(runsProcess);
      }
    });
  } finally {
    for (const p of processes) p.close();
  }
}

async function main(): Promise<void> {
  const runs = new EvalGreenRuns(opts);
  const { series, nodes, jobs } = runs;
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  const starts = windowStarts(series);
  const parallel = Math.min(opts.parallel ?? Math.min(availableParallelism(), Math.max(1, Math.floor(freemem() / processBytes(runs)))), starts.length * runs.workloads);
  log(
    `${jobs.length} jobs over ${opts.days} days on ${nodes.length} nodes, ${Math.round(opts.deferrableShare * 100)}% deferrable (deadline ${opts.windowHours} h past walltime), node failures ${opts.failures ? 'on' : 'off'}; ` +
      `grid intensity from ${opts.carbon}${series.skipped ? ` (${series.skipped} rows with no value left out)` : ''}, ${starts.length} window(s); live forecaster ${opts.forecaster} (${opts.warmupDays} days of warm-up)${opts.publishedError > 0 ? `, with a published forecast ${opts.publishedError} g off on average` : ''}; ` +
      `${starts.length * runs.workloads} workloads' runs in ${parallel > 1 ? `${parallel} processes` : 'this process'}`,
  );
  const windows: GreenWindow[] = [];
  await runWindows(runs, starts, parallel, (startMs, outcomes) => windows.push(windowOf(startMs, outcomes, log)));
  const summary = summarise(windows);
  const settings = { trace: opts.carbon, forecaster: opts.forecaster, publishedErrorG: opts.publishedError, days: opts.days, nodes: opts.nodes, load: opts.load, deferrableShare: opts.deferrableShare, deferralShare: formatDeferralShares(opts.deferralShare), windowHours: opts.windowHours, failures: opts.failures, mtbfHours: opts.mtbfHours ?? runs.clusterFile.failures?.mtbfHours ?? 0, gridOnly: opts.gridOnly ?? false, seed: opts.seed, noiseRuns: opts.noiseRuns };
  const out = opts.out ?? `.data/eval-green/${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const files = writeGreenReports({ settings, summary, windows }, out);
  log(`saved ${summary.carbonSavedPct}% (oracle ${summary.oracleSavedPct}%, live/oracle ${summary.liveOfOraclePct}%), over windows min ${summary.minSavedPct}% median ${summary.medianSavedPct}%, deadline misses ${summary.deadlineMisses}`);
  log(
    `other jobs: mean wait ${summary.othersMeanWaitS} s, green-blind ${summary.baselineOthersMeanWaitS} s (with later arrivals: mean ${summary.baselineOthersWaitMeanS} s, sd ${summary.baselineOthersWaitSdS} s); ` +
      `beyond noise (above mean + 2 sd) in ${summary.othersWaitAboveNoise} of ${summary.windows} windows; green-aware minus green-blind on the same workloads: mean ${summary.othersWaitExtraMeanS} s, sd ${summary.othersWaitExtraSdS} s`,
  );
  log(`reports: ${files.json}, ${files.html}`);
  process.stdout.write(`${JSON.stringify({ policy: 'green', ...summary, jobs: jobs.length })}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`eval:green: ${err.message}\n`);
  process.exit(2);
});
