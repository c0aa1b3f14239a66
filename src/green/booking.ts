import type { SchedJob } from '../core';
import { GPU_MILLI_PER_GPU, type NodeSpec, type Pool } from '../protocol';
import type { Point } from './series';
import { latestStartOf, planStart } from './shift';

/** What a planned window adds to a slot that is already full: far more than any intensity, so such windows lose. */
const FULL_PENALTY = 1e7;

/**
 * Capacity booked by deferred jobs, per step of time and per pool. Without it every deferrable job picks the
 * same greenest hour, and the herd released then delays other jobs and misses its own deadlines; with it
 * deferred work may claim at most a share of a pool in any step, and windows through full steps are
 * avoided (when every window is full, the job starts now).
 */
export class DeferralBook {
  private readonly slots = new Map<string, Map<number, number>>();

  constructor(
    private readonly stepMs: number,
    /** Share of a pool's capacity deferred jobs may hold in any one step. */
    private readonly share: number,
  ) {}

  /** The forecast with the steps that could not take `units` more of `capacity` made unattractive. */
  restrict(pool: string, capacity: number, units: number, forecast: readonly Point[]): Point[] {
    const booked = this.slots.get(pool);
    if (!booked) return [...forecast];
    const limit = this.share * capacity;
    return forecast.map((p) => ((booked.get(Math.floor(p.atMs / this.stepMs)) ?? 0) + units > limit ? { atMs: p.atMs, value: p.value + FULL_PENALTY } : p));
  }

  /** Books `units` of a pool over [startMs, startMs + durationMs). */
  book(pool: string, startMs: number, durationMs: number, units: number): void {
    let booked = this.slots.get(pool);
    if (!booked) this.slots.set(pool, (booked = new Map()));
    for (let slot = Math.floor(startMs / this.stepMs); slot * this.stepMs < startMs + durationMs; slot++) booked.set(slot, (booked.get(slot) ?? 0) + units);
  }

  /** Forgets the steps before `nowMs`. */
  prune(nowMs: number): void {
    const current = Math.floor(nowMs / this.stepMs);
    for (const booked of this.slots.values()) for (const slot of booked.keys()) if (slot < current) booked.delete(slot);
  }
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
/** Deferred jobs are planned to start at least this long before their latest start: a released job may still queue. */
export const DEADLINE_SAFETY_MS = 3_600_000;

/** A deferrable job's plan: when it starts, its latest start, and the forecast means behind the choice. */
export interface DeferralPlan {
  startMs: number;
  latestStartMs: number;
  expectedMean: number;
  nowMean: number;
}

/**
 * Plans a deferrable job (shared by the scheduler and the simulator): undefined when it is not shifted
 * (not deferrable, no declared run time, too large for its pool, or no time left); else the start within
 * its window — an hour before its latest start at the latest — whose forecast intensity over its run is
 * lowest among the steps the book still has room in. The plan is booked.
 */
export function planDeferral(input: {
  job: SchedJob;
  nowMs: number;
  stepMs: number;
  /** Forecast intensity of the job's pool from `fromMs` to `toMs`. */
  forecast(fromMs: number, toMs: number): Point[];
  book: DeferralBook;
  supply: number;
}): DeferralPlan | undefined {
  const { job, nowMs, book, supply } = input;
  const durationMs = job.durationMs ?? job.walltimeMs;
  if (!job.deferrable || durationMs === undefined) return undefined;
  const latestStartMs = latestStartOf({ submittedAtMs: job.submittedAtMs, durationMs, deadlineMs: job.deferrable.deadlineMs, maxDelaySeconds: job.deferrable.maxDelaySeconds });
  const units = poolDemand(job);
  if (latestStartMs <= nowMs || units > MAX_DEFERRED_SHARE_OF_POOL * supply) return undefined;
  const forecast = book.restrict(job.pool, supply, units, input.forecast(nowMs, latestStartMs + durationMs));
  const plannedBy = Math.max(nowMs, latestStartMs - DEADLINE_SAFETY_MS);
  const plan = planStart({ nowMs, durationMs, latestStartMs: plannedBy, forecast, stepMs: input.stepMs });
  book.book(job.pool, plan.startMs, durationMs, units);
  return { startMs: plan.startMs, latestStartMs, expectedMean: plan.expectedMean, nowMean: plan.nowMean };
}
