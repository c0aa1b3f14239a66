import type { SchedJob } from '../src/core';
import { latestStartOf, planStart, type Forecaster } from '../src/green';
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
 * planned once, when first offered: it starts at the time within its window whose forecast carbon
 * intensity over its run is lowest, never after its latest start, so holding it never makes it miss its
 * deadline. Jobs that are not deferrable, or do not say how long they run, are never held.
 */
export class GreenDeferral {
  private readonly plans = new Map<string, Plan>();
  private readonly wakeAt = new Map<number, Set<Pool>>();

  constructor(
    private readonly settings: { stepMs: number; forecaster: Forecaster },
    private readonly now: () => number,
    /** Called when held jobs of a pool become due. */
    private readonly due: (pools: ReadonlySet<Pool>) => void,
  ) {}

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
    const durationMs = job.durationMs ?? job.walltimeMs;
    if (durationMs === undefined || !job.deferrable) return { startMs: nowMs, reason: '' };
    const latestStartMs = latestStartOf({ submittedAtMs: job.submittedAtMs, durationMs, deadlineMs: job.deferrable.deadlineMs, maxDelaySeconds: job.deferrable.maxDelaySeconds });
    if (latestStartMs <= nowMs) return { startMs: nowMs, reason: '' };
    const forecast = this.settings.forecaster.forecast(nowMs, latestStartMs + durationMs - nowMs);
    const p = planStart({ nowMs, durationMs, latestStartMs, forecast, stepMs: this.settings.stepMs });
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      startMs: p.startMs,
      reason: `deferred for greener power until ${iso(p.startMs)}: forecast ${Math.round(p.expectedMean)} gCO2/kWh over its run, against ${Math.round(p.nowMean)} if it started now (latest start ${iso(latestStartMs)})`,
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
