import type { SchedJob } from '../src/core';
import { DeferralBook, planDeferral, type Forecaster } from '../src/green';
import type { Pool } from '../src/protocol';

/** Why a deferrable job waits, and until when. */
export interface Hold {
  untilMs: number;
  reason: string;
}

interface Plan {
  startMs: number;
  reason: string;
}

/**
 * Temporal shifting of deferrable jobs (after "Let's Wait Awhile", Middleware 2021): a job that declares
 * `deferrable` (a deadline or a longest delay) and how long it runs (durationSeconds, else its walltime) is
 * planned once, when first offered (planDeferral, as in the simulator): it starts at the time within its
 * window whose forecast carbon intensity over its run is lowest, an hour before its latest start at the
 * latest, so holding it does not make it miss its deadline; deferred jobs may book at most a share of their
 * pool in any step, so they do not all start at once. Jobs that are not deferrable, do not say how long they
 * run, or need a large part of their pool, are never held.
 */
export class GreenDeferral {
  private readonly plans = new Map<string, Plan>();
  private readonly wakeAt = new Map<number, Set<Pool>>();

  private readonly book: DeferralBook;

  constructor(
    private readonly settings: { stepMs: number; forecaster: Forecaster; bookShare: number; supplyOf(pool: Pool): number },
    private readonly now: () => number,
    /** Called when held jobs of a pool become due. */
    private readonly due: (pools: ReadonlySet<Pool>) => void,
  ) {
    this.book = new DeferralBook(settings.stepMs, settings.bookShare);
  }

  /** Until when a job is held, or undefined when it may start now. */
  hold(job: SchedJob): Hold | undefined {
    if (!job.deferrable) return undefined;
    let plan = this.plans.get(job.id);
    if (!plan) {
      plan = this.plan(job);
      this.plans.set(job.id, plan);
      if (plan.startMs > this.now()) this.wake(job.pool, plan.startMs);
    }
    return plan.startMs > this.now() ? { untilMs: plan.startMs, reason: plan.reason } : undefined;
  }

  /** The job started or ended: its plan is no longer needed. */
  forget(jobId: string): void {
    this.plans.delete(jobId);
  }

  get held(): number {
    const now = this.now();
    let n = 0;
    for (const p of this.plans.values()) if (p.startMs > now) n++;
    return n;
  }

  private plan(job: SchedJob): Plan {
    const nowMs = this.now();
    this.book.prune(nowMs);
    const forecaster = this.settings.forecaster;
    const plan = planDeferral({ job, nowMs, stepMs: this.settings.stepMs, forecast: (from, to) => forecaster.forecast(from, to - from), book: this.book, supply: this.settings.supplyOf(job.pool) });
    if (!plan) return { startMs: nowMs, reason: '' };
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      startMs: plan.startMs,
      reason: `deferred for greener power until ${iso(plan.startMs)}: forecast ${Math.round(plan.expectedMean)} gCO2/kWh over its run, against ${Math.round(plan.nowMean)} if it started now (latest start ${iso(plan.latestStartMs)})`,
    };
  }

  /** One timer per start time, for all the pools with jobs due then. */
  private wake(pool: Pool, atMs: number): void {
    const pools = this.wakeAt.get(atMs);
    if (pools) {
      pools.add(pool);
      return;
    }
    this.wakeAt.set(atMs, new Set([pool]));
    setTimeout(() => {
      const due = this.wakeAt.get(atMs)!;
      this.wakeAt.delete(atMs);
      this.due(due);
    }, Math.max(0, atMs - this.now())).unref();
  }
}
