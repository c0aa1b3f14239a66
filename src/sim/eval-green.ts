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
 * that is not green is charged at the grid's intensity. Prints a table per window, writes report.json and
 * report.html (savings per window beside the oracle's) to `--out`, and ends with one JSON line.
 */
import { Command, InvalidArgumentError } from 'commander';
import { environmentOf, loadClusterFile } from './cluster-file';
import { simulate, type SimResult } from './engine';
import { spread } from './recorder';
import { policiesNamed } from './policies';
import { seededRng } from './rng';
import { noisyPublishedForecast } from './published-forecast';
import { mixedCluster, mixedWorkload, type TimedJob } from './synthetic';
import type { SchedJob } from '../core';
import { DEFAULT_DEFERRAL_SHARES, WORK_MIX_MEMORY_MS, blendWithPublished, forecasterNamed, formatDeferralShares, loadCarbonSeries, makeForecaster, parseDeferralShares, type DeferralShares, type Series } from '../green';
import { DAY_MS, HOUR_MS } from '../time';
import { POOLS } from '../protocol';
import { round, summarise, writeGreenReports, type GreenWindow } from './eval-green-report';

const number = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number ≥ ${min}`);
  return n;
};

const count = (name: string) => (v: string) => {
  const n = number(name, 0)(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number`);
  return n;
};
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
  .option('--out <dir>', 'where to write report.json and report.html (default .data/eval-green/<time>)')
  .option('--json', 'print only the final JSON line on stdout')
  .showHelpAfterError()
  .parse()
  .opts<{
    carbon: string;
    carbonColumn?: string;
    cluster: string;
    start?: string;
    windows: number;
    days: number;
    nodes: number;
    load: number;
    deferrableShare: number;
    deferralShare: DeferralShares;
    windowHours: number;
    forecaster: string;
    publishedError: number;
    warmupDays: number;
    failures: boolean;
    gridOnly?: boolean;
    mtbfHours?: number;
    seed: number;
    noiseRuns: number;
    out?: string;
    json?: boolean;
  }>();

/** Makes a share of the jobs deferrable, each with a deadline `windowMs` past its walltime (its declared run time is exact). */
function withDeferrable(jobs: TimedJob[], share: number, windowMs: number, seed: number): TimedJob[] {
  const rng = seededRng(seed + 7);
  return jobs.map((t) => {
    const deferrable = rng() < share ? { deadlineMs: t.job.submittedAtMs + (t.job.walltimeMs ?? t.runMs) + windowMs } : undefined;
    return { runMs: t.runMs, job: { ...t.job, durationMs: t.runMs, deferrable } };
  });
}

/**
 * Arrivals before the window, of the same mix and deferrable share (another draw), which green-aware's
 * planners count in their pools' work mix and do not run (SimOptions.warmWork): as the forecaster is shown
 * the `--warmup-days` before the window, the planner knows its pools' load and swings as a scheduler that
 * has run that long does (a week at most: the mix's memory), not only from the window's first hours (a quiet
 * first hours read as a low load, and their jobs booked the green hours at a share the pool could not take).
 * With `--warmup-days 0` (a scheduler that has just started) none.
 */
function earlierWork(nodes: ReturnType<typeof mixedCluster>): SchedJob[] {
  const spanMs = Math.min(opts.warmupDays * DAY_MS, WORK_MIX_MEMORY_MS);
  // Drawn from time 0 and moved back by the span, to end where the window starts (ids prefixed `earlier-`).
  return drawWorkload(nodes, opts.seed + 1_000, spanMs).map(({ job }) => ({
    ...job,
    id: `earlier-${job.id}`,
    submittedAtMs: job.submittedAtMs - spanMs,
    deferrable: job.deferrable && { deadlineMs: job.deferrable.deadlineMs! - spanMs },
  }));
}

/** `spanMs` of arrivals from time 0 of the mixed workload drawn from `seed` (general-pool jobs run an hour on average), a share of them deferrable. */
function drawWorkload(nodes: ReturnType<typeof mixedCluster>, seed: number, spanMs: number): TimedJob[] {
  const next = mixedWorkload(seededRng(seed), seededRng(seed + 1), nodes, { load: opts.load, arrivals: 'poisson', generalMeanRunMs: HOUR_MS });
  const raw: TimedJob[] = [];
  for (let j = next(); j.job.submittedAtMs < spanMs; j = next()) raw.push(j);
  return withDeferrable(raw, opts.deferrableShare, opts.windowHours * HOUR_MS, seed);
}

/** How much later a deferrable job may arrive in the noise runs of green-blind. */
const NOISE_JITTER_MS = 60_000;

/**
 * The workload with each deferrable job arriving up to NOISE_JITTER_MS later (its deadline unchanged), for
 * the noise runs: green-blind on it shows how much other jobs' mean wait moves when deferrable work merely
 * arrives a little differently. On a small pool of gangs the mean is carried by a few long waits: on 40
 * nodes, 20 such runs moved it from 32.92 s to anywhere between 29.64 and 46.35 s (sd 4.4 s).
 */
function withLaterArrivals(jobs: readonly TimedJob[], seed: number): TimedJob[] {
  const rng = seededRng(seed);
  const moved = jobs.map((t) => (t.job.deferrable ? { runMs: t.runMs, job: { ...t.job, submittedAtMs: t.job.submittedAtMs + Math.floor(rng() * NOISE_JITTER_MS) } } : t));
  return moved.sort((a, b) => a.job.submittedAtMs - b.job.submittedAtMs);
}

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
const savedPct = (r: SimResult, blind: SimResult) => (blind.energy.workCarbonPerJobG > 0 ? Math.round((1 - r.energy.workCarbonPerJobG / blind.energy.workCarbonPerJobG) * 10_000) / 100 : 0);

function runWindow(series: Series, startMs: number, jobs: TimedJob[], noiseJobs: readonly TimedJob[][], warmWork: readonly SchedJob[], log: (line: string) => void): GreenWindow {
  const signal = { valueAt: (t: number) => series.valueAt(startMs + t), stepMs: series.stepMs };
  const file = loadClusterFile(opts.cluster);
  const base = environmentOf(file, signal);
  const failures = opts.mtbfHours ? { mtbfHours: opts.mtbfHours, repairHours: file.failures?.repairHours ?? 4 } : file.failures;
  const env = { ...base, greenShareAt: opts.gridOnly ? () => 0 : base.greenShareAt, failures: opts.failures ? failures : undefined };
  const nodes = mixedCluster(opts.nodes);
  const [blindPolicy, spatialPolicy, named] = policiesNamed('green-blind,green-spatial,green-aware');
  const awarePolicy = { ...named, deferralShare: opts.deferralShare };
  // The live forecaster learns the days before the window first, as a running service would have (a new one for each run: it keeps what it saw).
  const warmedForecaster = () => {
    const grid = { stepMs: env.stepMs };
    const own = makeForecaster(forecasterNamed(opts.forecaster), grid);
    const published = opts.publishedError > 0 && noisyPublishedForecast(signal, { meanErrorG: opts.publishedError, seed: opts.seed });
    const forecaster = published ? blendWithPublished(own, grid, published).forecaster : own;
    for (let t = -opts.warmupDays * DAY_MS; t < 0; t += env.stepMs) if (startMs + t >= series.startMs) forecaster.observe(t, signal.valueAt(t));
    return forecaster;
  };
  const aware = (workload: readonly TimedJob[]) => simulate(workload, nodes, { ...awarePolicy, name: 'green-aware' }, env, { seed: opts.seed, forecaster: warmedForecaster(), warmWork });
  const oracle = (workload: readonly TimedJob[]) => simulate(workload, nodes, { ...awarePolicy, name: 'oracle' }, env, { seed: opts.seed, warmWork });
  const runs = {
    blind: simulate(jobs, nodes, blindPolicy, env, { seed: opts.seed }),
    spatial: simulate(jobs, nodes, spatialPolicy, env, { seed: opts.seed }),
    aware: aware(jobs),
    oracle: oracle(jobs),
  };
  const results = [runs.blind, runs.spatial, runs.aware, runs.oracle];
  // Green-blind and green-aware on the window's workload and again on each noise run's: the band a wait within
  // noise falls in, and each workload's two waits and two emissions compared (green-aware's own run is noisy too).
  const blindRuns = [runs.blind, ...noiseJobs.map((later) => simulate(later, nodes, blindPolicy, env, { seed: opts.seed }))];
  const awareRuns = [runs.aware, ...noiseJobs.map((later) => aware(later))];
  const blindWaits = blindRuns.map((r) => r.deferrable.othersMeanWaitS);
  const awareWaits = awareRuns.map((r) => r.deferrable.othersMeanWaitS);
  const pairs = awareWaits.map((a, i): [number, number] => [a, blindWaits[i]]);
  const savedPairs = awareRuns.map((r, i) => savedPct(r, blindRuns[i]));
  // The oracle on the same workloads, so that the live forecaster's share of its saving is taken over them too.
  const oracleSavedPairs = [runs.oracle, ...noiseJobs.map((later) => oracle(later))].map((r, i) => savedPct(r, blindRuns[i]));
  const start = new Date(startMs).toISOString().slice(0, 10);
  log(`window from ${start}:`);
  const rows: [string, (r: SimResult) => string | number][] = [
    ['carbon per job, work (g)', (r) => r.energy.workCarbonPerJobG],
    ['carbon per job, metered (g)', (r) => r.energy.carbonPerJobG],
    ['carbon saved vs green-blind', (r) => `${savedPct(r, runs.blind)}%`],
    ['green share of jobs’ energy', (r) => `${(r.energy.jobGreenShare * 100).toFixed(1)}%`],
    ['jobs’ energy (kWh)', (r) => r.energy.jobKwh],
    ['deferrable jobs', (r) => r.deferrable.jobs],
    ['  mean delay (s)', (r) => r.deferrable.meanDelayS],
    ['  deadline misses', (r) => r.deferrable.deadlineMisses],
    ['other jobs: mean wait (s)', (r) => r.deferrable.othersMeanWaitS],
    ...POOLS.map((pool): [string, (r: SimResult) => string | number] => [`  in ${pool}`, (r) => r.deferrable.othersMeanWaitSByPool[pool] ?? '–']),
    ['jobs completed', (r) => r.jobs.completed],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  log(`${''.padEnd(width)}  ${results.map((r) => r.policy.padStart(14)).join('')}`);
  for (const [label, f] of rows) log(`${label.padEnd(width)}  ${results.map((r) => String(f(r)).padStart(14)).join('')}`);
  const band = spread(blindWaits);
  const noise = { mean: round(band.mean), sd: round(band.stdev) };
  const extra = spread(pairs.map(([a, b]) => a - b));
  const saved = spread(savedPairs);
  if (opts.noiseRuns > 0) {
    log(`other jobs: mean wait (s) under green-blind, deferrable jobs arriving up to ${NOISE_JITTER_MS / 1000} s later: ${blindWaits.join(', ')} (mean ${noise.mean}, sd ${noise.sd})`);
    log(`the same under green-aware: ${awareWaits.join(', ')}; green-aware minus green-blind, workload by workload: mean ${round(extra.mean)} s, sd ${round(extra.stdev)} s, longer in ${pairs.filter(([a, b]) => a > b).length} of ${pairs.length}`);
    log(`carbon saved by green-aware against green-blind, workload by workload: ${savedPairs.map((x) => `${x}%`).join(', ')} (mean ${round(saved.mean)}%, sd ${round(saved.stdev)}%)`);
    log(`the same by the oracle: ${oracleSavedPairs.map((x) => `${x}%`).join(', ')} (mean ${round(spread(oracleSavedPairs).mean)}%)`);
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
    othersMeanWaitS: runs.aware.deferrable.othersMeanWaitS,
    baselineOthersMeanWaitS: runs.blind.deferrable.othersMeanWaitS,
    baselineOthersWaitMeanS: noise.mean,
    baselineOthersWaitSdS: noise.sd,
    othersWaitExtraMeanS: round(extra.mean),
    othersWaitExtraSdS: round(extra.stdev),
    othersWaitPairs: pairs,
    savedPairsMeanPct: round(saved.mean),
    savedPairsSdPct: round(saved.stdev),
    savedPairs,
    oracleSavedPairsMeanPct: round(spread(oracleSavedPairs).mean),
    deferrableJobs: runs.aware.deferrable.jobs,
  };
}

/** The cluster file's mean time between failures, for the report's settings. */
const file0MtbfHours = () => loadClusterFile(opts.cluster).failures?.mtbfHours ?? 0;

function main(): void {
  const series = loadCarbonSeries(opts.carbon, { outside: 'clamp', column: opts.carbonColumn, columnSetting: '--carbon-column' });
  forecasterNamed(opts.forecaster);
  const nodes = mixedCluster(opts.nodes);
  // Arrivals fill the days asked for.
  const jobs = drawWorkload(nodes, opts.seed, opts.days * DAY_MS);
  const warmWork = earlierWork(nodes);
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  const starts = windowStarts(series);
  log(
    `${jobs.length} jobs over ${opts.days} days on ${nodes.length} nodes, ${Math.round(opts.deferrableShare * 100)}% deferrable (deadline ${opts.windowHours} h past walltime), node failures ${opts.failures ? 'on' : 'off'}; ` +
      `grid intensity from ${opts.carbon}${series.skipped ? ` (${series.skipped} rows with no value left out)` : ''}, ${starts.length} window(s); live forecaster ${opts.forecaster} (${opts.warmupDays} days of warm-up)${opts.publishedError > 0 ? `, with a published forecast ${opts.publishedError} g off on average` : ''}`,
  );
  // The noise runs' workloads, the same in every window.
  const noiseJobs = Array.from({ length: opts.noiseRuns }, (_, i) => withLaterArrivals(jobs, opts.seed * 1_000 + i + 1));
  const windows = starts.map((startMs) => runWindow(series, startMs, jobs, noiseJobs, warmWork, log));
  const summary = summarise(windows);
  const settings = { trace: opts.carbon, forecaster: opts.forecaster, publishedErrorG: opts.publishedError, days: opts.days, nodes: opts.nodes, load: opts.load, deferrableShare: opts.deferrableShare, deferralShare: formatDeferralShares(opts.deferralShare), windowHours: opts.windowHours, failures: opts.failures, mtbfHours: opts.mtbfHours ?? file0MtbfHours(), gridOnly: opts.gridOnly ?? false, seed: opts.seed, noiseRuns: opts.noiseRuns };
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

try {
  main();
} catch (err) {
  process.stderr.write(`eval:green: ${(err as Error).message}\n`);
  process.exit(2);
}
