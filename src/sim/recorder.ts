import type { ClusterState, Placement } from '../core';
import { GPU_MILLI_PER_GPU, POOLS, type NodeSpec, type Pool } from '../protocol';
import type { EnergyModel } from './energy';
import { gpuFragmentation, type GpuRequest } from './fragmentation';
import type { TimedJob } from './synthetic';

/** Bounded slowdown counts run times below this as this long (the usual 10 s of the literature). */
export const BSLD_THRESHOLD_MS = 10_000;
/** Distinct GPU request shapes kept as the demand that fragmentation is measured against. */
const GPU_DEMAND_SHAPES = 64;

/** Percentiles and mean of a sample. */
export interface Stats {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** What one policy did with one workload. */
export interface SimResult {
  policy: string;
  jobs: {
    total: number;
    completed: number;
    /** Could never fit any node of their pool, even an empty one. */
    rejected: number;
    /** Still waiting (or running) when nothing else could happen. */
    unfinished: number;
    /** Killed by a node failure and queued again (counted once per kill). */
    interrupted: number;
    /** Gave up after their last attempt was lost to a node failure (maxAttempts, as the service does). */
    failed: number;
    /** Stopped to make room for a higher priority class, and queued again. */
    preempted: number;
  };
  /** Submit to (last) start, seconds. */
  waitS: Stats;
  /** Submit to end (turnaround), seconds. */
  completionS: Stats;
  /** max(1, turnaround / max(run, 10 s)). */
  boundedSlowdown: Stats;
  /** Time-averaged allocated share of each pool's scarce resource (cores; GPUs in intelligent) over the makespan. */
  utilisationByPool: Partial<Record<Pool, number>>;
  /** Mean of utilisationByPool over the pools that received jobs. */
  utilisation: number;
  /** Mean GPU fragmentation over the samples (null when the cluster has no GPUs). */
  gpuFragmentation: number | null;
  /**
   * Energy the nodes drew (idle included), its green share, carbon and cost; and what metering charges to
   * jobs (each task's share of its node's draw), with its carbon per completed job.
   */
  energy: { kwh: number; greenKwh: number; greenShare: number; carbonKg: number; cost: number; jobKwh: number; jobGreenShare: number; jobCarbonKg: number; carbonPerJobG: number; workCarbonKg: number; workCarbonPerJobG: number };
  /**
   * Deferrable jobs: how long they waited past submission on average, and how many ended after their
   * deadline; and the mean wait of the other jobs, which shifting must not delay. A wait here is time queued:
   * submit to last start, less the runs a failure or a preemption cut short (waitS keeps them).
   */
  deferrable: { jobs: number; meanDelayS: number; deadlineMisses: number; othersMeanWaitS: number; othersMeanWaitSByPool: Partial<Record<Pool, number>> };
  /** Placements held back by a power cap (counted per attempt). */
  powerCapHolds: number;
  /** The most each pool drew at any moment, in kW. */
  peakPowerKwByPool: Record<Pool, number>;
  /**
   * Jobs that started later than the EASY reservation they were first given: 0 in submit order (run times
   * never exceed walltimes); in priority order a more urgent arrival may take the head's place.
   */
  reservationViolations: number;
  /** EASY look-ahead: jobs a backfill pass offers at most (Slurm's bf_max_job_test); null without a limit. */
  backfillDepth: number | null;
  /** Jobs held back by green-aware admission at least once. */
  deferred: number;
  /** First submit to last end, seconds. */
  makespanS: number;
  timeline: Timeline;
  /** Wall-clock time of the replay. */
  wallMs: number;
  jobsPerSec: number;
}

/** State sampled at regular virtual times, for charts. */
export interface Timeline {
  tS: number[];
  utilisation: Record<Pool, number[]>;
  pending: Record<Pool, number[]>;
  powerKw: number[];
  powerKwByPool: Record<Pool, number[]>;
  greenShare: number[];
}

/** The events of a replay the recorder needs to hear of. */
interface Ended {
  timed: TimedJob;
  /** Its last start. */
  startMs: number;
  nowMs: number;
  /** Time it ran on attempts a failure or a preemption cut short (0: none). */
  lostMs?: number;
}

/**
 * What a replay measures: waits, turnarounds and slowdowns of completed jobs, utilisation integrated over
 * virtual time, GPU fragmentation and the timeline sampled at regular times, and the energy model's totals.
 */
export class SimRecorder {
  readonly counts = { rejected: 0, interrupted: 0, failed: 0, preempted: 0, violations: 0, powerCapHolds: 0 };
  /** Jobs held back by green-aware admission. */
  readonly deferredJobs = new Set<string>();
  private readonly units: Record<Pool, { allocated: number; capacity: number; integral: number; used: boolean }>;
  private readonly gpuDemand = new Map<string, GpuRequest>();
  private readonly timeline: Timeline = { tS: [], utilisation: { general: [], intelligent: [], super: [] }, pending: { general: [], intelligent: [], super: [] }, powerKw: [], powerKwByPool: { general: [], intelligent: [], super: [] }, greenShare: [] };
  private readonly waits: number[] = [];
  private readonly turnarounds: number[] = [];
  private readonly slowdowns: number[] = [];
  private readonly deferrableDelays: number[] = [];
  private readonly otherWaitsByPool: Record<Pool, number[]> = { general: [], intelligent: [], super: [] };
  private deadlineMisses = 0;
  private fragmentationSum = 0;
  private fragmentationSamples = 0;
  private firstSubmitMs = 0;
  lastEndMs = 0;
  private lastMs = 0;
  sampleEveryMs = 1;

  constructor(
    private readonly cluster: ClusterState,
    private readonly energy: EnergyModel,
    private readonly samples: number,
  ) {
    this.units = { general: blankUnits(), intelligent: blankUnits(), super: blankUnits() };
  }

  /** The run's span, from the first submit to the last, so that the timeline has about `samples` points. */
  begin(firstSubmitMs: number, lastSubmitMs: number): void {
    this.firstSubmitMs = firstSubmitMs;
    this.lastMs = firstSubmitMs;
    this.sampleEveryMs = Math.max(1000, Math.ceil((lastSubmitMs - firstSubmitMs) / this.samples));
  }

  addNode(spec: NodeSpec, allocatable: { cpuMillis: number; gpus: number }): void {
    this.units[spec.pool].capacity += spec.pool === 'intelligent' ? allocatable.gpus * GPU_MILLI_PER_GPU : allocatable.cpuMillis;
  }

  arrived(timed: TimedJob): void {
    const job = timed.job;
    this.units[job.pool].used = true;
    if (job.pool === 'intelligent' && this.gpuDemand.size < GPU_DEMAND_SHAPES) this.gpuDemand.set(`${job.task.gpus}/${job.task.gpuMilli}`, { gpus: job.task.gpus, gpuMilli: job.task.gpuMilli });
  }

  /** Integrates utilisation up to `t` (the energy model integrates itself). */
  advance(t: number): void {
    const dt = t - this.lastMs;
    if (dt <= 0) return;
    for (const pool of POOLS) this.units[pool].integral += this.units[pool].allocated * dt;
    this.lastMs = t;
  }

  /** The units of its pool's scarce resource a placement holds. */
  unitsOf(pool: Pool, placement: Placement): number {
    let units = 0;
    // Per task on every start: the cluster's nodes of the placement, no lookup by id.
    const { tasks, starts, nodes } = this.cluster.placedOn(placement);
    for (let i = 0; i < nodes.length; i++) {
      const alloc = nodes[i]!.allocatable;
      for (let k = starts[i]; k < starts[i + 1]; k++) units += pool === 'intelligent' ? tasks[k].gpuIndices.length * tasks[k].gpuMilliEach : placement.exclusive ? alloc.cpuMillis : tasks[k].cpuMillis;
    }
    return units;
  }

  allocated(pool: Pool, units: number): void {
    this.units[pool].allocated += units;
  }

  finished({ timed, startMs, nowMs, lostMs = 0 }: Ended): void {
    const job = timed.job;
    const turnaround = nowMs - job.submittedAtMs;
    this.waits.push(startMs - job.submittedAtMs);
    this.turnarounds.push(turnaround);
    this.slowdowns.push(Math.max(1, turnaround / Math.max(timed.runMs, BSLD_THRESHOLD_MS)));
    this.lastEndMs = Math.max(this.lastEndMs, nowMs);
    // Time queued: a run a failure cut short was not waiting (which jobs a failure hits is a lottery that
    // would otherwise weigh in hours on a comparison of seconds).
    const queuedMs = startMs - job.submittedAtMs - lostMs;
    if (!job.deferrable) this.otherWaitsByPool[job.pool].push(queuedMs);
    else {
      this.deferrableDelays.push(queuedMs);
      if (job.deferrable.deadlineMs !== undefined && nowMs > job.deferrable.deadlineMs) this.deadlineMisses++;
    }
  }

  sample(nowMs: number, pendingOf: (pool: Pool) => number): void {
    const tl = this.timeline;
    tl.tS.push(Math.round((nowMs - this.firstSubmitMs) / 1000));
    for (const pool of POOLS) {
      const u = this.units[pool];
      tl.utilisation[pool].push(u.capacity > 0 ? round(u.allocated / u.capacity, 4) : 0);
      tl.pending[pool].push(pendingOf(pool));
      tl.powerKwByPool[pool].push(round(this.energy.drawOf(pool) / 1000, 3));
    }
    const { watts, green } = this.energy.now(nowMs);
    tl.powerKw.push(round(watts / 1000, 2));
    tl.greenShare.push(round(watts > 0 ? green / watts : 0, 4));
    if (this.units.intelligent.capacity > 0) {
      this.fragmentationSum += gpuFragmentation(this.cluster, [...this.gpuDemand.values()]).gpuFragmentation;
      this.fragmentationSamples++;
    }
    // A long drain after the last arrival would grow the timeline without bound: halve its resolution.
    if (tl.tS.length >= 2 * this.samples) {
      this.sampleEveryMs *= 2;
      halve(tl);
    }
  }

  result(policy: string, total: number, unfinished: number, backfillDepth: number | null, wallMs: number): SimResult {
    const spanMs = Math.max(1, this.lastEndMs - this.firstSubmitMs);
    const utilisationByPool: Partial<Record<Pool, number>> = {};
    for (const pool of POOLS) {
      const u = this.units[pool];
      if (u.used && u.capacity > 0) utilisationByPool[pool] = round(u.integral / (u.capacity * spanMs), 4);
    }
    const used = Object.values(utilisationByPool);
    const e = this.energy.totalsNow();
    const delays = stats(this.deferrableDelays, 1000);
    const c = this.counts;
    return {
      policy,
      jobs: { total, completed: this.waits.length, rejected: c.rejected, unfinished, interrupted: c.interrupted, failed: c.failed, preempted: c.preempted },
      waitS: stats(this.waits, 1000),
      completionS: stats(this.turnarounds, 1000),
      boundedSlowdown: stats(this.slowdowns, 1),
      utilisationByPool,
      utilisation: used.length > 0 ? round(used.reduce((a, b) => a + b, 0) / used.length, 4) : 0,
      gpuFragmentation: this.fragmentationSamples > 0 ? round(this.fragmentationSum / this.fragmentationSamples, 4) : null,
      energy: {
        kwh: round(e.kwh, 2),
        greenKwh: round(e.greenKwh, 2),
        greenShare: e.kwh > 0 ? round(e.greenKwh / e.kwh, 4) : 0,
        carbonKg: round(e.carbonKg, 2),
        cost: round(e.cost, 2),
        jobKwh: round(e.jobKwh, 2),
        jobGreenShare: e.jobKwh > 0 ? round(e.jobGreenKwh / e.jobKwh, 4) : 0,
        jobCarbonKg: round(e.jobCarbonKg, 2),
        carbonPerJobG: this.waits.length > 0 ? round((e.jobCarbonKg * 1000) / this.waits.length, 2) : 0,
        // Unrounded to the gram: green evaluations compare these, and a hundredth of a gram per job is their scale.
        workCarbonKg: round(e.workCarbonKg, 6),
        workCarbonPerJobG: this.waits.length > 0 ? round((e.workCarbonKg * 1000) / this.waits.length, 4) : 0,
      },
      deferrable: { jobs: this.deferrableDelays.length, meanDelayS: delays.mean, deadlineMisses: this.deadlineMisses, othersMeanWaitS: stats(POOLS.flatMap((p) => this.otherWaitsByPool[p]), 1000).mean, othersMeanWaitSByPool: Object.fromEntries(POOLS.filter((p) => this.otherWaitsByPool[p].length > 0).map((p) => [p, stats(this.otherWaitsByPool[p], 1000).mean])) },
      powerCapHolds: c.powerCapHolds,
      peakPowerKwByPool: { general: this.energy.peakPoolWatts.general / 1000, intelligent: this.energy.peakPoolWatts.intelligent / 1000, super: this.energy.peakPoolWatts.super / 1000 },
      reservationViolations: c.violations,
      backfillDepth,
      deferred: this.deferredJobs.size,
      makespanS: Math.round(spanMs / 1000),
      timeline: this.timeline,
      wallMs: Math.round(wallMs),
      jobsPerSec: Math.round(total / Math.max(1e-3, wallMs / 1000)),
    };
  }
}

function blankUnits() {
  return { allocated: 0, capacity: 0, integral: 0, used: false };
}

/** Mean and percentiles (nearest rank) of a sample, divided by `unit`. */
export function stats(values: number[], unit: number): Stats {
  if (values.length === 0) return { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] / unit;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { mean: round(sum / sorted.length / unit, 2), p50: round(at(0.5), 2), p95: round(at(0.95), 2), p99: round(at(0.99), 2), max: round(sorted[sorted.length - 1] / unit, 2) };
}

/** A statistic over runs (seeds of a fill, noise runs of eval:green). */
export interface Spread {
  mean: number;
  min: number;
  max: number;
  /** Sample standard deviation (0 with one run). */
  stdev: number;
}

/** Mean, range and sample standard deviation of `values`, to five decimals. */
export function spread(values: readonly number[]): Spread {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean: round(mean, 5), min: Math.min(...values), max: Math.max(...values), stdev: round(Math.sqrt(variance), 5) };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Keeps every other point of the timeline. */
function halve(tl: Timeline): void {
  const keep = <T>(xs: T[]) => {
    const out = xs.filter((_, i) => i % 2 === 0);
    xs.length = 0;
    xs.push(...out);
  };
  keep(tl.tS);
  for (const pool of POOLS) {
    keep(tl.utilisation[pool]);
    keep(tl.pending[pool]);
    keep(tl.powerKwByPool[pool]);
  }
  keep(tl.powerKw);
  keep(tl.greenShare);
}
