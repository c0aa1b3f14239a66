import { EasyShadow, FairShare, SchedulingPipeline, placeJob, withGpuDemandMix, type CyclePorts, type Placement, type Policy, type SchedJob } from '../src/core';
import { POOLS, attemptIdOf, type Pool } from '../src/protocol';
import type { DeferralPlanner } from '../src/green';
import type { SchedulerMetrics } from '../src/telemetry/metrics';
import { HOUR_MS, nextHourMs, type Clock, type Timer } from '../src/time';
import type { SchedulerConfig } from './config';
import { MAX_IN_FLIGHT, type JobStore } from './job-store';
import type { LeadershipView } from './leadership';
import { PowerBudget } from './power-budget';
import type { JobRecord, PlacementObserver } from './state/job-table';
import type { TenantDirectory } from './tenants';

/**
 * The service's driver of the scheduling pipeline (src/core/cycle): it runs a cycle soon after anything
 * changes (many requests in one tick make one cycle), wakes up when a held job is due, pauses while too many
 * decisions wait for JetStream, and implements the pipeline's ports with the scheduler's state: leadership,
 * tenants' quotas, preemption of logged jobs, EASY from the running jobs' walltimes, power caps, and a
 * placement that is a `placed` event in the job log.
 */
export class SchedulerCycle implements PlacementObserver {
  readonly pipeline: SchedulingPipeline;
  private queued = false;
  private paused = false;
  private wakeTimer: Timer | undefined;
  private wakeAtMs = Number.POSITIVE_INFINITY;
  private readonly power: PowerBudget;
  /** The hour the caps were last looked at (hourly caps change with it: every pool is tried again). */
  private capHour = -1;
  /** EASY's availability profile of each pool that backfills, following the job table's placements. */
  private readonly backfills = new Map<Pool, EasyShadow>();

  constructor(
    private readonly store: JobStore,
    private readonly leadership: LeadershipView,
    private readonly tenants: TenantDirectory,
    private readonly config: SchedulerConfig,
    policy: Policy,
    private readonly metrics: SchedulerMetrics,
    private readonly clock: Clock,
    private readonly planner: DeferralPlanner | undefined,
  ) {
    this.power = new PowerBudget(config.powerBudgetsKw, () => store.cluster, () => clock.now());
    // Pools scoring by GPU fragmentation learn the demand mix of submissions (reset on rebuild).
    policy = withGpuDemandMix(policy);
    for (const pool of POOLS) if (policy[pool].backfill) this.backfills.set(pool, new EasyShadow(policy, store.cluster, pool));
    store.table.observer = this;
    const fairShare = new FairShare(store.cluster, { weightOf: (t) => tenants.weightOf(t), agingMs: config.agingMs });
    this.pipeline = new SchedulingPipeline(
      store.cluster,
      store.pending,
      { policy, order: (nowMs) => fairShare.comparator(nowMs), preemptionMaxPerHour: config.preemptionMaxPerHour, backfillDepth: config.backfillDepth },
      this.ports(policy),
    );
  }

  /** Runs a scheduling cycle soon; many requests in one tick make one cycle. */
  request(): void {
    if (this.queued || this.leadership.ledPools.length === 0) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      this.run();
    });
  }

  /** Capacity may have freed up in a pool: its waiting jobs are retried in the next cycle, which is asked for. */
  retry(pool: Pool): void {
    this.store.pending.markDirty(pool);
    this.request();
  }

  /** Whether nothing is left to do now: no cycle queued, nothing to try, nothing in flight. */
  get isIdle(): boolean {
    return !this.queued && (this.leadership.ledPools.length === 0 || !this.store.pending.hasWork || this.paused) && this.store.inFlight === 0;
  }

  /** Appends in flight fell back: a cycle paused for them goes on. */
  relieved(): void {
    if (!this.paused) return;
    this.paused = false;
    this.request();
  }

  /** A rebuild: reservations are found again from the rebuilt state (the replay tells the profiles every placement again). */
  reset(): void {
    this.pipeline.reset();
    for (const shadow of this.backfills.values()) shadow.reset();
  }

  /** A placement was taken: a job is expected to end at its placement plus its walltime (never, without one). */
  placed(job: JobRecord, placement: Placement, atMs: number): void {
    this.backfills.get(job.spec.pool)?.started(placement, atMs + (job.sched.walltimeMs ?? Number.POSITIVE_INFINITY));
  }

  released(job: JobRecord): void {
    this.backfills.get(job.spec.pool)?.ended(job.id);
  }

  stop(): void {
    this.wakeTimer?.cancel();
  }

  /** The submit fast path: a placement for a job with nobody queued ahead of it in its pool, if one may start now. */
  placeNow(job: SchedJob): Placement | undefined {
    const placement = this.pipeline.placeNow(job, this.clock.now());
    if (placement) {
      this.metrics.jobsPlaced.inc({ pool: job.pool, tenant: job.tenant });
      this.metrics.waitTime.observe({ pool: job.pool, tenant: job.tenant }, 0);
    }
    return placement;
  }

  private run(): void {
    this.leadership.confirm();
    const nowMs = this.clock.now();
    this.pipeline.wake(nowMs);
    if (this.power.hourly && Math.floor(nowMs / HOUR_MS) !== this.capHour) {
      this.capHour = Math.floor(nowMs / HOUR_MS);
      for (const pool of POOLS) this.store.pending.markDirty(pool);
    }
    if (this.leadership.ledPools.length > 0 && this.store.pending.hasWork) {
      if (this.store.inFlight >= MAX_IN_FLIGHT || this.store.gate) {
        this.paused = true;
        return;
      }
      const end = this.metrics.cycleDuration.startTimer();
      const { more } = this.pipeline.cycle(nowMs, { maxAttempts: this.config.cycleAttempts });
      end();
      // Counted on /metrics: a test's "did not happen" check waits for cycles to have run, instead of sleeping.
      this.metrics.cycles.inc();
      if (more) this.request();
    }
    this.scheduleWake();
  }

  /** One timer, at the earliest time a held job is released or escalated, or an hourly power cap changes. */
  private scheduleWake(): void {
    const atMs = Math.min(this.pipeline.nextWakeMs(), this.power.hourly ? nextHourMs(this.clock.now()) : Number.POSITIVE_INFINITY);
    if (!Number.isFinite(atMs) || (this.wakeTimer && atMs >= this.wakeAtMs)) return;
    this.wakeTimer?.cancel();
    this.wakeAtMs = atMs;
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAtMs = Number.POSITIVE_INFINITY;
      this.request();
    }, Math.max(0, atMs - this.clock.now()));
  }

  private ports(policy: Policy): CyclePorts {
    const { store, metrics, config } = this;
    return {
      leadership: {
        leads: (pool) => this.leadership.leads(pool),
        notLeading: (pool) => `placed by the leader of pool ${pool} (${this.leadership.leaderOf(pool)?.holder ?? 'not elected yet'})`,
      },
      hold: config.greenDeferral ? this.planner : undefined,
      quotaOf: (tenant, pool) => this.tenants.quotaOf(tenant, pool),
      place: (cluster, p, placementPolicy, options) => {
        const t0 = process.hrtime.bigint();
        const result = placeJob(cluster, p, placementPolicy, options);
        metrics.placementDuration.observe({ pool: p.job.pool, result: result.ok ? 'placed' : 'unschedulable' }, Number(process.hrtime.bigint() - t0) / 1e9);
        return result;
      },
      preemption: config.preemption
        ? {
            victim: (jobId) => {
              const record = store.table.get(jobId);
              const attempt = record?.current;
              return record && attempt && { job: record.sched, startedAtMs: attempt.startedAtMs ?? attempt.placedAtMs, stopping: attempt.stop !== undefined, preemptedAtMs: record.preemptions };
            },
            stopping: (jobId) => store.table.get(jobId)?.preempting ?? [],
            evict: (victims, by, nowMs) => {
              for (const victim of victims) {
                const v = store.table.get(victim)!;
                metrics.preemptions.inc({ pool: v.spec.pool });
                store.commit({ type: 'preempted', jobId: victim, attemptId: v.current!.attemptId, byJobId: by.id, reason: `preempted by ${by.id} (${by.priorityClass})`, atMs: nowMs });
              }
            },
          }
        : undefined,
      backfill: (pool) => this.backfills.get(pool),
      power: { beginCycle: () => this.power.refresh(), blocks: (placement) => this.power.blocks(placement), placed: (placement) => this.power.placed(placement) },
      bind: (job, placement, nowMs) => {
        const record = store.table.get(job.id)!;
        const attempt = record.attempts.length + 1;
        metrics.jobsPlaced.inc({ pool: job.pool, tenant: job.tenant });
        metrics.waitTime.observe({ pool: job.pool, tenant: job.tenant }, Math.max(0, nowMs - record.queuedAtMs) / 1000);
        store.commit({ type: 'placed', jobId: job.id, attempt, attemptId: attemptIdOf(job.id, attempt), placement, atMs: nowMs });
      },
      observe: (job, stage, _nowMs, failure) => {
        if (stage === 'not-leader') return;
        const main = failure && !failure.never ? (Object.entries(failure.reasons) as [string, number][]).sort((x, y) => y[1] - x[1])[0]?.[0] : undefined;
        const reason = stage === 'never-fits' ? 'never-fits' : stage === 'no-fit' || stage === 'preempting' || stage === 'backfill-head' ? (main ?? 'no-nodes') : stage;
        metrics.placementFailures.inc({ pool: job.pool, reason });
      },
    };
  }
}
