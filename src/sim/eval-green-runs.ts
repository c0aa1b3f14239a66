/**
 * The runs of eval:green, made from its settings alone: the workloads (the window's, its noise runs', the
 * earlier arrivals a planner is warmed with) and, for one window's start and one workload, the runs of each
 * policy on it. The same settings give the same runs in any process, so eval:green may hand the runs of a
 * window to other processes (eval-green-worker.ts) and put their figures together as if it had made them.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { environmentOf, loadClusterFile, type ClusterFile } from './cluster-file';
import { childFlags } from './isolated';
import { simulate, type SimResult } from './engine';
import { policiesNamed } from './policies';
import { noisyPublishedForecast } from './published-forecast';
import { seededRng } from './rng';
import { mixedCluster, mixedWorkload, type TimedJob } from './synthetic';
import type { SchedJob } from '../core';
import { WORK_MIX_MEMORY_MS, blendWithPublished, forecasterNamed, loadCarbonSeries, makeForecaster, type DeferralShares, type Series } from '../green';
import { DAY_MS, HOUR_MS } from '../time';

/** eval:green's flags that shape its runs. */
export interface EvalGreenSettings {
  carbon: string;
  carbonColumn?: string;
  cluster: string;
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
}

/** What eval:green reads of a run (the rest of a SimResult stays where it was made). */
export type RunFigures = Pick<SimResult, 'policy' | 'energy' | 'deferrable' | 'jobs'>;

/** The runs on one workload of one window: green-blind, green-aware and the oracle; green-spatial on the window's own workload only. */
export interface WorkloadRuns {
  blind: RunFigures;
  spatial?: RunFigures;
  aware: RunFigures;
  oracle: RunFigures;
}

/** How much later a deferrable job may arrive in the noise runs. */
export const NOISE_JITTER_MS = 60_000;

const figures = (r: SimResult): RunFigures => ({ policy: r.policy, energy: r.energy, deferrable: r.deferrable, jobs: r.jobs });

/** Makes a share of the jobs deferrable, each with a deadline `windowMs` past its walltime (its declared run time is exact). */
function withDeferrable(jobs: TimedJob[], share: number, windowMs: number, seed: number): TimedJob[] {
  const rng = seededRng(seed + 7);
  return jobs.map((t) => {
    const deferrable = rng() < share ? { deadlineMs: t.job.submittedAtMs + (t.job.walltimeMs ?? t.runMs) + windowMs } : undefined;
    return { runMs: t.runMs, job: { ...t.job, durationMs: t.runMs, deferrable } };
  });
}

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

/** The trace, the cluster and the workloads of an evaluation, and the runs of one window on one of them. */
export class EvalGreenRuns {
  readonly series: Series;
  readonly nodes: ReturnType<typeof mixedCluster>;
  /** The window's workload: arrivals that fill the days asked for. */
  readonly jobs: TimedJob[];
  readonly warmWork: SchedJob[];
  /** The zones' green share, prices and failures (the nodes are the built-in mixed cluster). */
  readonly clusterFile: ClusterFile;

  constructor(private readonly settings: EvalGreenSettings) {
    this.series = loadCarbonSeries(settings.carbon, { outside: 'clamp', column: settings.carbonColumn, columnSetting: '--carbon-column' });
    this.clusterFile = loadClusterFile(settings.cluster);
    forecasterNamed(settings.forecaster);
    this.nodes = mixedCluster(settings.nodes);
    this.jobs = this.drawWorkload(settings.seed, settings.days * DAY_MS);
    this.warmWork = this.earlierWork();
  }

  /** The workloads: the window's own (0), then each noise run's (1 … noiseRuns). */
  get workloads(): number {
    return 1 + this.settings.noiseRuns;
  }

  /**
   * Workload `k`: the window's own (0), or noise run k's, the same in every window. A noise run's is drawn
   * when asked for (in a fraction of the time its runs take) rather than kept: a process then holds one.
   */
  workload(k: number): TimedJob[] {
    if (!Number.isInteger(k) || k < 0 || k >= this.workloads) throw new RangeError(`no workload ${k}: there are ${this.workloads}`);
    return k === 0 ? this.jobs : withLaterArrivals(this.jobs, this.settings.seed * 1_000 + k);
  }

  /**
   * The runs of the window from `startMs` on workload `k`. The live forecaster learns the days before the
   * window first, as a running service would have (a new one for each run: it keeps what it saw).
   */
  run(startMs: number, k: number): WorkloadRuns {
    const { settings: o, series, nodes, warmWork } = this;
    const workload = this.workload(k);
    const signal = { valueAt: (t: number) => series.valueAt(startMs + t), stepMs: series.stepMs };
    const file = this.clusterFile;
    const base = environmentOf(file, signal);
    const failures = o.mtbfHours ? { mtbfHours: o.mtbfHours, repairHours: file.failures?.repairHours ?? 4 } : file.failures;
    const env = { ...base, greenShareAt: o.gridOnly ? () => 0 : base.greenShareAt, failures: o.failures ? failures : undefined };
    const [blindPolicy, spatialPolicy, named] = policiesNamed('green-blind,green-spatial,green-aware');
    const awarePolicy = { ...named, deferralShare: o.deferralShare };
    const warmedForecaster = () => {
      const grid = { stepMs: env.stepMs };
      const own = makeForecaster(forecasterNamed(o.forecaster), grid);
      const published = o.publishedError > 0 && noisyPublishedForecast(signal, { meanErrorG: o.publishedError, seed: o.seed });
      const forecaster = published ? blendWithPublished(own, grid, published).forecaster : own;
      for (let t = -o.warmupDays * DAY_MS; t < 0; t += env.stepMs) if (startMs + t >= series.startMs) forecaster.observe(t, signal.valueAt(t));
      return forecaster;
    };
    return {
      blind: figures(simulate(workload, nodes, blindPolicy, env, { seed: o.seed })),
      spatial: k === 0 ? figures(simulate(workload, nodes, spatialPolicy, env, { seed: o.seed })) : undefined,
      aware: figures(simulate(workload, nodes, { ...awarePolicy, name: 'green-aware' }, env, { seed: o.seed, forecaster: warmedForecaster(), warmWork })),
      oracle: figures(simulate(workload, nodes, { ...awarePolicy, name: 'oracle' }, env, { seed: o.seed, warmWork })),
    };
  }

  /** `spanMs` of arrivals from time 0 of the mixed workload drawn from `seed` (general-pool jobs run an hour on average), a share of them deferrable. */
  private drawWorkload(seed: number, spanMs: number): TimedJob[] {
    const o = this.settings;
    const next = mixedWorkload(seededRng(seed), seededRng(seed + 1), this.nodes, { load: o.load, arrivals: 'poisson', generalMeanRunMs: HOUR_MS });
    const raw: TimedJob[] = [];
    for (let j = next(); j.job.submittedAtMs < spanMs; j = next()) raw.push(j);
    return withDeferrable(raw, o.deferrableShare, o.windowHours * HOUR_MS, seed);
  }

  /**
   * Arrivals before the window, of the same mix and deferrable share (another draw), which green-aware's
   * planners count in their pools' work mix and do not run (SimOptions.warmWork): as the forecaster is shown
   * the `--warmup-days` before the window, the planner knows its pools' load and swings as a scheduler that
   * has run that long does (a week at most: the mix's memory), not only from the window's first hours (a quiet
   * first hours read as a low load, and their jobs booked the green hours at a share the pool could not take).
   * With `--warmup-days 0` (a scheduler that has just started) none.
   */
  private earlierWork(): SchedJob[] {
    const spanMs = Math.min(this.settings.warmupDays * DAY_MS, WORK_MIX_MEMORY_MS);
    // Drawn from time 0 and moved back by the span, to end where the window starts (ids prefixed `earlier-`).
    return this.drawWorkload(this.settings.seed + 1_000, spanMs).map(({ job }) => ({
      ...job,
      id: `earlier-${job.id}`,
      submittedAtMs: job.submittedAtMs - spanMs,
      deferrable: job.deferrable && { deadlineMs: job.deferrable.deadlineMs! - spanMs },
    }));
  }
}

/** What eval:green asks of a process that makes runs (eval-green-worker.ts), and what it answers. */
export type EvalGreenRequest = { kind: 'settings'; settings: EvalGreenSettings } | { kind: 'run'; startMs: number; workload: number };
export type EvalGreenReply = { kind: 'ready' } | { kind: 'runs'; runs: WorkloadRuns } | { kind: 'failed'; message: string };

/** A process that makes runs from the same settings (EvalGreenRuns in eval-green-worker.ts), one at a time. */
export interface RunsProcess {
  run(startMs: number, workload: number): Promise<WorkloadRuns>;
  /** Lets the process go (it ends once told nothing more will be asked). */
  close(): void;
}

/** Forks a process that makes runs, and resolves once it has made its workloads from `settings`. */
export function forkRuns(settings: EvalGreenSettings): Promise<RunsProcess> {
  const child = fork(fileURLToPath(new URL('./eval-green-worker.ts', import.meta.url)), [], { execArgv: childFlags(), serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  let waiting: { resolve: (reply: EvalGreenReply) => void; reject: (err: Error) => void } | undefined;
  const ask = (request: EvalGreenRequest) =>
    new Promise<EvalGreenReply>((resolve, reject) => {
      waiting = { resolve, reject };
      child.send(request);
    }).then((reply) => {
      if (reply.kind === 'failed') throw new Error(reply.message);
      return reply;
    });
  child.on('message', (reply: EvalGreenReply) => {
    const answered = waiting;
    waiting = undefined;
    answered?.resolve(reply);
  });
  const gone = (err: Error) => {
    waiting?.reject(err);
    waiting = undefined;
  };
  child.on('error', gone);
  child.on('exit', (code, signal) => gone(new Error(`a process making runs ended (exit ${code ?? signal})`)));
  const made: RunsProcess = {
    run: async (startMs, workload) => {
      const reply = await ask({ kind: 'run', startMs, workload });
      if (reply.kind !== 'runs') throw new Error(`a process making runs answered ${reply.kind} to a run`);
      return reply.runs;
    },
    close: () => {
      if (child.connected) child.disconnect();
    },
  };
  return ask({ kind: 'settings', settings }).then(
    () => made,
    (err: Error) => {
      child.kill();
      throw err;
    },
  );
}
