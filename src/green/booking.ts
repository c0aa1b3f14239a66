import { z } from 'zod';
import type { ClusterState, SchedJob } from '../core';
import { GPU_MILLI_PER_GPU, POOLS, type NodeSpec, type Pool } from '../protocol';
import type { ErrorAgainst } from './forecasters';
import type { Point } from './series';
import { latestStartOf, rerunsFor, safetyMarginMs } from '../core/deadline';
import { planStart } from './shift';

/**
 * Capacity booked by deferred jobs, per step of time and per pool. Without it every deferrable job picks the
 * same greenest hour, and the herd released then queues behind itself into later, dirtier hours, delays
 * other jobs and misses its own deadlines; with it deferred work may claim at most a share of a pool in any
 * step, and a window through a full step is not planned. Starting now is never refused: it is what a
 * scheduler blind to green power would do, so a full book sends a job to start now, never to a worse hour.
 */
export class DeferralBook {
  private readonly slots = new Map<string, Map<number, number>>();
  private readonly shares: DeferralShares;

  constructor(
    private readonly stepMs: number,
    /** Share of a pool's capacity deferred jobs may hold in any one step: one for every pool, or per pool. */
    share: number | DeferralShares,
    /** The share a pool's configured one comes to now, given its capacity (see {@link WorkMix.bookingShare}); absent: as configured. */
    private readonly shareNow: (pool: string, configured: number, capacity: number) => number = (_pool, configured) => configured,
  ) {
    this.shares = typeof share === 'number' ? { default: share, pools: {} } : share;
  }

  /** The share of a pool deferred jobs may book in a step now: the configured one, as `shareNow` makes it. */
  shareFor(pool: string, capacity: number): number {
    return this.shareNow(pool, shareOf(this.shares, pool), capacity);
  }

  /** Whether `units` more of `capacity` fit in every step of [startMs, startMs + durationMs), at `share` (by default {@link shareFor}: a caller trying many starts asks once). */
  fits(pool: string, capacity: number, units: number, startMs: number, durationMs: number, share = this.shareFor(pool, capacity)): boolean {
    const booked = this.slots.get(pool);
    const limit = share * capacity;
    // A share of 0 books nothing, not even a job that holds none of the pool's scarce resource.
    if (limit <= 0) return false;
    if (!booked) return units <= limit;
    for (let slot = Math.floor(startMs / this.stepMs); slot * this.stepMs < startMs + Math.max(durationMs, 1); slot++) if ((booked.get(slot) ?? 0) + units > limit) return false;
    return true;
  }

  /** Books `units` of a pool over [startMs, startMs + durationMs). */
  book(pool: string, startMs: number, durationMs: number, units: number): void {
    let booked = this.slots.get(pool);
    if (!booked) this.slots.set(pool, (booked = new Map()));
    for (let slot = Math.floor(startMs / this.stepMs); slot * this.stepMs < startMs + durationMs; slot++) booked.set(slot, (booked.get(slot) ?? 0) + units);
  }

  /** Gives back what {@link book} booked (a plan given up). */
  unbook(pool: string, startMs: number, durationMs: number, units: number): void {
    const booked = this.slots.get(pool);
    if (!booked) return;
    for (let slot = Math.floor(startMs / this.stepMs); slot * this.stepMs < startMs + durationMs; slot++) {
      const left = (booked.get(slot) ?? 0) - units;
      if (left > 1e-9) booked.set(slot, left);
      else booked.delete(slot);
    }
  }

  /** Forgets the steps before `nowMs`. */
  prune(nowMs: number): void {
    const current = Math.floor(nowMs / this.stepMs);
    for (const booked of this.slots.values()) for (const slot of booked.keys()) if (slot < current) booked.delete(slot);
  }
}

/**
 * How long the work mix remembers: what arrived a week ago weighs 1/e of what arrives now. The room kept for
 * a pool's swings is measured from its mean load, and on a small pool a day's mean moves with a quiet morning
 * or a busy one: on 30 nodes (DE July, 3 windows of a day, three workloads) with a day's memory the jobs that
 * cannot wait waited 0.54, 1.96 and 5.84 s longer than under green-blind (a quiet morning read as a low load,
 * and its jobs booked the green hours at the configured fifth); with a week's, 0.35, 1.65 and 1.69 s.
 */
export const WORK_MIX_MEMORY_MS = 7 * 86_400_000;

/** The work mix is trusted only after it has watched a pool this long (before, the configured share holds). */
export const WORK_MIX_MIN_SPAN_MS = 3_600_000;

/**
 * How many standard deviations of a pool's own swings deferred work leaves free above its mean load, where
 * work that cannot wait would suffer them (see bookingShare): with normal swings, the pool's own work alone
 * reaches the room deferred work may book about one step in 160. On eval:green's 30 nodes (DE, July, 3
 * windows of a day, the planner warm, the work mix then remembering a day), the jobs that cannot wait
 * waited longer than under green-blind by 2.7 ± 0.87 s at 2 (2 of 3 windows beyond noise, 1.33% saved),
 * 0.54 ± 0.44 s at 2.5 (none, 0.76%), −0.04 ± 0.3 s at 3 (0.16%); with the configured fifth alone,
 * 4.67 ± 0.76 s (3 of 3, 1.68%).
 */
export const SWING_SDS = 2.5;

/**
 * The share of a pool deferred jobs may book in a step, from the configured share and the pool's recent
 * work: the configured share protects the jobs that cannot wait, and it holds while at least half the work
 * cannot wait; where less does, deferred work may book more, up to the room the pool's load leaves free
 * when nothing can wait: `(1 - load) * (1 - 2 * cannotWait)`. A configured 0 stays 0 (the operator said:
 * defer nothing there). `load` is the pool's offered work over its capacity, `cannotWait` the part of it (by
 * demand × run time) that is not deferrable. With every job deferrable over a day, on eval:green's default
 * week, the configured 0.2 let deferred work save 2.51% (2020-06-01) where the perfect forecast with half
 * the jobs deferrable saved 2.76%: the share, set to protect the others, bound when there were none; a share
 * of 0.4 (the room a load of 0.6 leaves) saved 3.9%, 1 (no book) 2.8%.
 *
 * Whatever the share, deferred work books only the room the pool's load and its swings leave free, as far as
 * there is work that cannot wait to suffer the swings:
 * `1 - load - min(1, 2 * cannotWait) * SWING_SDS * swing`, where `swing` is the standard deviation of the
 * pool's occupancy over its capacity (WorkMix.of). A small pool swings more: on 30 nodes (18 general, 1,312
 * cores, a load of 0.6, gangs of up to 128 cores) the general pool's occupancy swings by about 13% of it,
 * and a fifth of the pool booked on top of its load in the green hours filled it to 80–93%, where tasks of
 * 16 cores found no node: the jobs that cannot wait waited 9.2 s on average there against 1.9 s under
 * green-blind. On 200 nodes it swings by about 5%, and the configured fifth fits.
 */
export function bookingShare(configured: number, load: number, cannotWait: number, swing = 0): number {
  if (!(configured > 0)) return 0;
  const raised = Math.min(1, Math.max(configured, Math.max(0, 1 - load) * Math.max(0, 1 - 2 * cannotWait)));
  const kept = Math.min(1, 2 * Math.max(0, cannotWait)) * SWING_SDS * Math.max(0, swing);
  return Math.max(0, Math.min(raised, 1 - load - kept));
}

/**
 * Each pool's recent work, counted once per job as it is first offered, decayed over {@link WORK_MIX_MEMORY_MS}:
 * how much arrives (demand × run time, in the unit of poolDemand × ms), how much of it cannot wait, and
 * demand² × run time, from which the swings of the pool's occupancy follow.
 */
export class WorkMix {
  private readonly pools = new Map<string, WorkMixState>();

  /** A job arrived at `atMs` (count each job once; one that arrived before the latest counted weighs as old as it is). */
  observe(job: SchedJob, atMs: number): void {
    let t = this.pools.get(job.pool);
    if (!t) this.pools.set(job.pool, (t = { all: 0, cannotWait: 0, squares: 0, atMs, sinceMs: atMs }));
    if (atMs > t.atMs) {
      const decay = Math.exp(-(atMs - t.atMs) / WORK_MIX_MEMORY_MS);
      t.all *= decay;
      t.cannotWait *= decay;
      t.squares *= decay;
      t.atMs = atMs;
    }
    const weight = Math.exp(-(t.atMs - Math.min(atMs, t.atMs)) / WORK_MIX_MEMORY_MS);
    const demand = poolDemand(job);
    const work = weight * demand * (job.durationMs ?? job.walltimeMs ?? 3_600_000);
    t.all += work;
    t.squares += demand * work;
    if (!job.deferrable) t.cannotWait += work;
    t.sinceMs = Math.min(t.sinceMs, atMs);
  }

  /**
   * The pool's offered load (its work's rate over `capacity`) and the share of its work that cannot wait;
   * its swing, the standard deviation of its occupancy over `capacity` as if every job started on arrival
   * (jobs arriving at random and running a while: the occupancy's variance is the arrival rate times the
   * mean of demand² × run time). Undefined until watched {@link WORK_MIX_MIN_SPAN_MS}.
   */
  of(pool: string, capacity: number): { load: number; cannotWait: number; swing: number } | undefined {
    const t = this.pools.get(pool);
    if (!t || !(t.all > 0) || !(capacity > 0) || t.atMs - t.sinceMs < WORK_MIX_MIN_SPAN_MS) return undefined;
    // The decayed sum of a steady rate r, watched for s, is r·M·(1 - e^(-s/M)).
    const span = WORK_MIX_MEMORY_MS * (1 - Math.exp(-(t.atMs - t.sinceMs) / WORK_MIX_MEMORY_MS));
    return { load: t.all / span / capacity, cannotWait: t.cannotWait / t.all, swing: Math.sqrt(t.squares / span) / capacity };
  }

  /** {@link bookingShare} for the pool now; the configured share until the pool has been watched long enough. */
  bookingShare(pool: string, configured: number, capacity: number): number {
    const mix = this.of(pool, capacity);
    return mix ? bookingShare(configured, mix.load, mix.cannotWait, mix.swing) : configured;
  }

  /** When the pool's latest job was counted (-Infinity before its first): jobs that arrived by then are in the mix. */
  countedThrough(pool: string): number {
    return this.pools.get(pool)?.atMs ?? -Infinity;
  }

  /** Every pool's sums, for a snapshot. */
  serialize(): Record<string, WorkMixState> {
    return Object.fromEntries([...this.pools].map(([pool, t]) => [pool, { ...t }]));
  }

  /**
   * Takes pools' sums back from a snapshot: a pool's where they are newer than this mix's own (a restarted
   * scheduler has none; one that led before and leads again keeps what it counted since the snapshot).
   */
  restore(state: Readonly<Record<string, WorkMixState>>): void {
    for (const [pool, t] of Object.entries(state)) if (t.atMs > this.countedThrough(pool)) this.pools.set(pool, { ...t });
  }
}

/**
 * A pool's sums in a {@link WorkMix}, as of `atMs` (the latest job counted), watched since `sinceMs`: the
 * shape a state snapshot stores and checks (scheduler/state/snapshot.ts).
 */
export const workMixStateSchema = z.object({
  /** Decayed demand × run time of every job. */
  all: z.number().min(0),
  /** …of the jobs that cannot wait. */
  cannotWait: z.number().min(0),
  /** Decayed demand² × run time. */
  squares: z.number().min(0),
  atMs: z.number(),
  sinceMs: z.number(),
});
export type WorkMixState = z.infer<typeof workMixStateSchema>;

/** The share of a pool deferred jobs may book in any step where a setting names none for it (`0.2` in QY_GREEN_DEFERRAL_SHARE means every pool). */
export const DEFAULT_DEFERRAL_SHARE = 0.2;

/**
 * The shares unless configured (the service's QY_GREEN_DEFERRAL_SHARE, `0.2,intelligent=0`): the GPU pool
 * defers nothing. On eval:green's default workload (200 nodes, a week) deferring its jobs made the jobs that
 * cannot wait wait 1.82 ± 0.28 s longer on average (28%), compared workload by workload: gangs of whole GPU
 * servers that cannot wait found servers taken by deferred work released into the green hours. Without it,
 * 0.02 ± 0.23 s, at the cost of about 40% of the saving.
 */
export const DEFAULT_DEFERRAL_SHARES: DeferralShares = { default: DEFAULT_DEFERRAL_SHARE, pools: { intelligent: 0 } };

/** The share of each pool deferred jobs may book in a step: `default` for the pools not named. 0 defers nothing there. */
export interface DeferralShares {
  default: number;
  pools: Partial<Record<Pool, number>>;
}

/** A pool's share in `shares`. */
export function shareOf(shares: DeferralShares, pool: string): number {
  return shares.pools[pool as Pool] ?? shares.default;
}

/**
 * Reads deferral shares as operators write them: `0.2` for every pool, or pools named with their own,
 * `0.2,intelligent=0` (intelligent defers nothing, the others 0.2) or `general=0.2,intelligent=0.05,super=0`
 * (unnamed pools then take the first share given without a pool, 0.2 when there is none). Each share is in
 * 0..1. Throws with what is wrong.
 */
export function parseDeferralShares(text: string): DeferralShares {
  const shares: DeferralShares = { default: DEFAULT_DEFERRAL_SHARE, pools: {} };
  let sawDefault = false;
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) throw new Error(`${JSON.stringify(text)}: an empty item; write 0.2, or 0.2,intelligent=0, or general=0.2,intelligent=0`);
  for (const item of items) {
    const eq = item.indexOf('=');
    const [left, right] = eq < 0 ? [undefined, item] : [item.slice(0, eq).trim(), item.slice(eq + 1).trim()];
    const share = Number(right);
    if (right === '' || !Number.isFinite(share) || share < 0 || share > 1) throw new Error(`${JSON.stringify(item)}: a share must be a number from 0 to 1`);
    if (left === undefined) {
      if (sawDefault) throw new Error(`${JSON.stringify(text)}: more than one share without a pool`);
      sawDefault = true;
      shares.default = share;
    } else {
      if (!(POOLS as readonly string[]).includes(left)) throw new Error(`${JSON.stringify(item)}: unknown pool ${left} (known: ${POOLS.join(', ')})`);
      if (shares.pools[left as Pool] !== undefined) throw new Error(`${JSON.stringify(text)}: pool ${left} named twice`);
      shares.pools[left as Pool] = share;
    }
  }
  return shares;
}

/** Written as parseDeferralShares reads it. */
export function formatDeferralShares(shares: DeferralShares): string {
  return [String(shares.default), ...POOLS.filter((p) => shares.pools[p] !== undefined).map((p) => `${p}=${shares.pools[p]}`)].join(',');
}

/** How much of a pool's scarce resource a job holds: cores (general), milli-GPUs (intelligent), nodes (super). */
export function poolDemand(job: SchedJob): number {
  if (job.pool === 'super') return job.tasks;
  if (job.pool === 'intelligent') return job.tasks * (job.task.gpus * GPU_MILLI_PER_GPU + job.task.gpuMilli);
  return (job.tasks * job.task.cpuMillis) / 1000;
}

/** A pool's supply in the unit of poolDemand (cores, milli-GPUs or nodes), from what it has. */
export function supplyUnits(pool: Pool, has: { nodes: number; cpuMillis: number; gpuMilli: number }): number {
  return pool === 'super' ? has.nodes : pool === 'intelligent' ? has.gpuMilli : has.cpuMillis / 1000;
}

/**
 * The share of a pool's scarce resource in use now: GPUs in intelligent, cores elsewhere (in super, where a
 * task takes a whole node but may ask for fewer cores than it has, the cores' share is a lower bound of the
 * nodes' share: a released job there is held back only when the pool is at least that busy).
 */
export function inUseShare(pool: Pool, cluster: ClusterState): number {
  const capacity = cluster.capacityOf(pool);
  const used = cluster.allocatedOf(pool);
  if (pool === 'intelligent') return capacity.gpuMilli > 0 ? used.gpuMilli / capacity.gpuMilli : 0;
  return capacity.cpuMillis > 0 ? used.cpuMillis / capacity.cpuMillis : 0;
}

/** The supply of each pool from its nodes' specs. */
export function poolSupply(nodes: readonly NodeSpec[]): Record<Pool, number> {
  const supply: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  for (const n of nodes) {
    const alloc = n.allocatable ?? n.capacity;
    supply[n.pool] += supplyUnits(n.pool, { nodes: 1, cpuMillis: alloc.cpuMillis, gpuMilli: alloc.gpus * GPU_MILLI_PER_GPU });
  }
  return supply;
}


/** Jobs needing more than this share of their pool are not shifted in time: they cannot be counted on to start when released. */
export const MAX_DEFERRED_SHARE_OF_POOL = 0.05;

/** A deferrable job's plan: when it starts, its latest start, when it is escalated, and the forecast means behind the choice. */
export interface DeferralPlan {
  startMs: number;
  latestStartMs: number;
  /** Latest start less the safety margin: a job still waiting then goes ahead of every class (never before its planned start). */
  escalateAtMs: number;
  expectedMean: number;
  nowMean: number;
  /** What was booked, to give it back when the plan is given up. */
  durationMs: number;
  units: number;
}

/**
 * How many times its recent error a later window's forecast may be too low: once, the rule "defer only when
 * the expected saving exceeds the forecast's recent error over that horizon", with the error over the run
 * starting now and `minGain` of now's intensity on top. The error is measured on this grid and held at the
 * larger of a week's mean and the last half day's (errors come in runs); one not yet measured is a guess, held
 * twice against a later window (plannedError, UNMEASURED_ERROR_BOUND).
 *
 * Until 2026-12-07 a measured error was held twice too (a one-sided bound holding about 19 times in 20 for
 * normal errors). That bound, not the forecast, was what the live forecaster lost against the oracle where
 * deferred work has little room: on eval:green's 30 nodes (GB's whole trace, 6 windows of a day) it kept 57%
 * of the oracle's saving (0.29% against 0.51%), 82% held once (0.42%), 100% not held at all, and on 40
 * nodes 58%, now 86%. Held once, no window of the eight grids at hand emitted more than green-blind at the
 * cluster file's failure rate (at the defaults, with the zones' green share and with grid power only; on 30
 * nodes, with it, and GB, DE and FR with grid power only), and no deadline was missed.
 */
export const ERROR_BOUND = 1;

/**
 * What a later start must win by over starting now, in the forecast's unit, for a job of `durationMs` whose
 * window starts `aheadMs` from now (to its middle): {@link ERROR_BOUND} times the forecast's recent error
 * there, for the window may be dirtier than forecast, plus its recent error over the run starting now, for
 * now may be cleaner (each as plannedError holds it). Infinity when either is unknown. A perfect forecast (no
 * errorAt): 0.
 */
export function deferralMargin(errorAt: ((aheadMs: number, against: ErrorAgainst) => number) | undefined, durationMs: number): ((aheadMs: number) => number) | undefined {
  if (!errorAt) return undefined;
  const nowError = errorAt(Math.max(0, durationMs / 2), 'now');
  return (aheadMs) => ERROR_BOUND * errorAt(aheadMs, 'later') + nowError;
}

/**
 * Plans a deferrable job (shared by the scheduler and the simulator): undefined when it is not shifted
 * (not deferrable, no declared run time, too large for its pool, or no time left); else the start within
 * its window — the safety margin before its latest start at the latest — whose forecast intensity over its
 * run is lowest among the windows the book still has room for, provided it beats starting now by more than
 * the forecast's recent error (now and that far ahead) and by `minGain` of now's intensity; otherwise now.
 * A later start is booked.
 */
export function planDeferral(input: {
  job: SchedJob;
  nowMs: number;
  stepMs: number;
  /** Forecast intensity of the job's pool from `fromMs` to `toMs`. */
  forecast(fromMs: number, toMs: number): Point[];
  book: DeferralBook;
  supply: number;
  /** The forecast's recent mean absolute error `aheadMs` ahead, as held against a later window or starting now (plannedError); none (a perfect forecast): 0. */
  errorAt?(aheadMs: number, against: ErrorAgainst): number;
  /** Share of now's intensity a later start must save besides the forecast's error (see PlanRequest.minGain). */
  minGain?: number;
  /** Keep room before the latest start to run the job again after a node failure (see rerunsFor). */
  rerunMargin?: boolean;
  /** The nodes' mean time between failures, when known: room for more reruns where failures are frequent (rerunsFor). */
  nodeMtbfMs?: number;
}): DeferralPlan | undefined {
  const { job, nowMs, book, supply } = input;
  const durationMs = job.durationMs ?? job.walltimeMs;
  if (!job.deferrable || durationMs === undefined) return undefined;
  const latestStartMs = latestStartOf({ submittedAtMs: job.submittedAtMs, durationMs, deadlineMs: job.deferrable.deadlineMs, maxDelaySeconds: job.deferrable.maxDelaySeconds });
  const units = poolDemand(job);
  if (latestStartMs <= nowMs || units > MAX_DEFERRED_SHARE_OF_POOL * supply) return undefined;
  const reruns = (input.rerunMargin ?? true) ? rerunsFor(job, input.nodeMtbfMs) : 0;
  const escalateAtMs = latestStartMs - safetyMarginMs({ durationMs, walltimeMs: job.walltimeMs }, reruns);
  const plannedBy = Math.max(nowMs, escalateAtMs);
  const share = book.shareFor(job.pool, supply);
  const plan = planStart({
    nowMs,
    durationMs,
    latestStartMs: plannedBy,
    forecast: input.forecast(nowMs, plannedBy + durationMs),
    stepMs: input.stepMs,
    margin: deferralMargin(input.errorAt, durationMs),
    minGain: input.minGain,
    blocked: (startMs) => !book.fits(job.pool, supply, units, startMs, durationMs, share),
  });
  if (plan.startMs > nowMs) book.book(job.pool, plan.startMs, durationMs, units);
  return { startMs: plan.startMs, latestStartMs, escalateAtMs: Math.max(plan.startMs, escalateAtMs), expectedMean: plan.expectedMean, nowMean: plan.nowMean, durationMs, units };
}
