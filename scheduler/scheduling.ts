import {
  FairShare,
  backfillAllowed,
  byEndTime,
  easyReservation,
  findPreemption,
  placeJob,
  prepareJob,
  type AttemptOutcome,
  type ExpectedEnd,
  type JobComparator,
  type Placement,
  type PreparedJobWithCache,
  type Reservation,
  type SchedJob,
  type VictimInfo,
} from '../src/core';
import { POOLS, attemptIdOf, type JobPlaced, type Pool } from '../src/protocol';
import { PowerBudget } from './power-budget';
import type { Scheduler } from './service';

/** A pool's EASY reservation for this cycle: its head job and when it will start. */
interface PoolReservation {
  head: PreparedJobWithCache;
  reservation: Reservation;
}

const HOUR_MS = 3_600_000;

/**
 * One scheduling cycle and the rules around placement that need the scheduler's view of jobs and tenants:
 * the fair-share order, tenants' quotas, EASY backfilling in pools that use it, and preemption.
 */
export class SchedulingCycle {
  private readonly prepared = new WeakMap<SchedJob, PreparedJobWithCache>();
  private reservations = new Map<Pool, PoolReservation>();
  private nowMs = 0;
  private budget: PowerBudget | undefined;

  constructor(private readonly s: Scheduler) {}

  /** Power caps (made on first use: the scheduler creates its cycle before its configuration is set). */
  private get power(): PowerBudget {
    return (this.budget ??= new PowerBudget(this.s.config.powerBudgetsKw as Record<string, number>, () => this.s.cluster));
  }

  /** The queue's order now: priority class, weighted dominant share with aging, submit time. */
  order(): JobComparator {
    return new FairShare(this.s.cluster, { weightOf: (t) => this.s.tenants.weightOf(t), agingMs: this.s.config.agingMs }).comparator(this.s.now());
  }

  run(): { more: boolean } {
    this.nowMs = this.s.now();
    this.power.refresh();
    const order = this.order();
    this.reservations = this.reserveForHeads(order);
    return this.s.pending.runCycle((job) => this.tryPlace(job), this.s.config.cycleAttempts, order);
  }

  /** A placement for a job that has just arrived with nobody ahead of it in its pool, if one fits now within quota. */
  placeNow(p: PreparedJobWithCache): Placement | undefined {
    if (this.greenHold(p.job)) return undefined;
    const result = this.timedPlace(p);
    if (!result.ok || this.quotaBlock(p.job, result.placement) || this.power.blocks(result.placement)) return undefined;
    this.power.placed(result.placement);
    this.prepared.set(p.job, p);
    this.s.metrics.jobsPlaced.inc({ pool: p.job.pool, tenant: p.job.tenant });
    this.s.metrics.waitTime.observe({ pool: p.job.pool, tenant: p.job.tenant }, 0);
    return result.placement;
  }

  /** placeJob, timed into the placement histogram. */
  private timedPlace(p: PreparedJobWithCache): ReturnType<typeof placeJob> {
    const t0 = process.hrtime.bigint();
    const result = placeJob(this.s.cluster, p, this.s.policy);
    this.s.metrics.placementDuration.observe({ pool: p.job.pool, result: result.ok ? 'placed' : 'unschedulable' }, Number(process.hrtime.bigint() - t0) / 1e9);
    return result;
  }

  /** Counts a failed attempt under its main reason (the one most nodes gave). */
  private failed(job: SchedJob, reason: string): void {
    this.s.metrics.placementFailures.inc({ pool: job.pool, reason });
  }

  /** Why a tenant's quota in the job's pool holds the job back, if it does. */
  quotaBlock(job: SchedJob, placement?: Placement): string | undefined {
    const quota = this.s.tenants.quotaOf(job.tenant, job.pool);
    const used = this.s.cluster.usageOf(job.tenant, job.pool);
    const who = `tenant ${job.tenant} is at its ${job.pool} quota`;
    if (quota.runningJobs !== undefined && used.jobs + 1 > quota.runningJobs) return `${who} of ${quota.runningJobs} running jobs`;
    const cpuMillis = placement ? placement.tasks.reduce((s, t) => s + t.cpuMillis, 0) : job.tasks * job.task.cpuMillis;
    if (quota.cpuMillis !== undefined && used.cpuMillis + cpuMillis > quota.cpuMillis) {
      return `${who} of ${quota.cpuMillis / 1000} cores (${used.cpuMillis / 1000} in use, this job needs ${cpuMillis / 1000})`;
    }
    const gpuMilli = placement ? placement.tasks.reduce((s, t) => s + t.gpuIndices.length * t.gpuMilliEach, 0) : job.tasks * (job.task.gpus * 1000 + job.task.gpuMilli);
    if (quota.gpus !== undefined && used.gpuMilli + gpuMilli > quota.gpus * 1000) {
      return `${who} of ${quota.gpus} GPUs (${used.gpuMilli / 1000} in use, this job needs ${gpuMilli / 1000})`;
    }
    return undefined;
  }

  private preparedOf(job: SchedJob): PreparedJobWithCache {
    let p = this.prepared.get(job);
    if (!p) {
      p = prepareJob(job, this.s.policy);
      this.prepared.set(job, p);
    }
    return p;
  }

  /** A deferrable job held for a greener window, when deferral is on. */
  private greenHold(job: SchedJob): string | undefined {
    return this.s.config.greenDeferral ? this.s.deferral.hold(job)?.reason : undefined;
  }

  private tryPlace(job: SchedJob): AttemptOutcome {
    // Another replica leads the pool: its jobs wait here as they wait there, placed by that leader.
    if (!this.s.leads(job.pool)) return { ok: false, sameForShape: true, reason: `placed by the leader of pool ${job.pool} (${this.s.leaderOf(job.pool)?.holder ?? 'not elected yet'})` };
    const p = this.preparedOf(job);
    const held = this.greenHold(job);
    if (held) {
      this.failed(job, 'green-deferral');
      return { ok: false, sameForShape: false, reason: held };
    }
    const quota = this.quotaBlock(job);
    if (quota) {
      this.failed(job, 'quota');
      return { ok: false, sameForShape: false, reason: quota };
    }
    const result = this.timedPlace(p);
    if (!result.ok) {
      const main = (Object.entries(result.reasons) as [string, number][]).sort((x, y) => y[1] - x[1])[0];
      this.failed(job, result.never ? 'never-fits' : (main?.[0] ?? 'no-nodes'));
      const reserved = this.reservations.get(job.pool);
      if (reserved?.head.job.id === job.id) {
        return { ok: false, sameForShape: false, failure: result, reason: `reserved to start at ${new Date(reserved.reservation.startMs).toISOString()} when running jobs reach their walltime (EASY backfill)` };
      }
      const preempting = this.s.config.preemption && !result.never ? this.preempt(p) : undefined;
      return preempting ? { ok: false, sameForShape: false, failure: result, reason: preempting } : { ok: false, sameForShape: true, failure: result };
    }
    const quotaOfPlacement = this.quotaBlock(job, result.placement);
    if (quotaOfPlacement) {
      this.failed(job, 'quota');
      return { ok: false, sameForShape: false, reason: quotaOfPlacement };
    }
    const overBudget = this.power.blocks(result.placement);
    if (overBudget) {
      this.failed(job, 'power-budget');
      return { ok: false, sameForShape: false, reason: overBudget };
    }
    const reserved = this.reservations.get(job.pool);
    if (reserved && reserved.head.job.id !== job.id) {
      const endMs = this.nowMs + (job.walltimeMs ?? Number.POSITIVE_INFINITY);
      if (!backfillAllowed(this.s.cluster, reserved.reservation, reserved.head, this.s.policy, result.placement, endMs)) {
        this.failed(job, 'backfill-reservation');
        return {
          ok: false,
          sameForShape: false,
          reason: `held back by EASY backfill: it would delay ${reserved.head.job.id}, reserved to start at ${new Date(reserved.reservation.startMs).toISOString()}`,
        };
      }
    }
    const record = this.s.table.get(job.id)!;
    const attempt = record.attempts.length + 1;
    const event: JobPlaced = { type: 'placed', jobId: job.id, attempt, attemptId: attemptIdOf(job.id, attempt), placement: result.placement, atMs: this.nowMs };
    this.s.metrics.jobsPlaced.inc({ pool: job.pool, tenant: job.tenant });
    this.s.metrics.waitTime.observe({ pool: job.pool, tenant: job.tenant }, Math.max(0, this.nowMs - record.queuedAtMs) / 1000);
    this.power.placed(result.placement);
    this.s.commit(event);
    return { ok: true };
  }

  /**
   * For each pool that backfills, the reservation of the job that goes first when it does not fit now.
   * When it does fit, its pool is marked for retry so it is offered (and placed) in this cycle.
   */
  private reserveForHeads(order: JobComparator): Map<Pool, PoolReservation> {
    const out = new Map<Pool, PoolReservation>();
    for (const pool of POOLS) {
      if (!this.s.policy[pool].backfill || !this.s.leads(pool)) continue;
      const headJob = this.s.pending.headOf(pool, order);
      if (!headJob || this.quotaBlock(headJob)) continue;
      const head = this.preparedOf(headJob);
      const now = placeJob(this.s.cluster, head, this.s.policy);
      if (now.ok) {
        this.s.pending.markDirty(pool);
        continue;
      }
      if (now.never) continue;
      const reservation = easyReservation(this.s.cluster, head, this.s.policy, this.expectedEnds(pool), this.nowMs);
      if (reservation) out.set(pool, { head, reservation });
    }
    return out;
  }

  /** When each job holding resources in the pool should end, earliest first: its start plus its walltime (never, without one). */
  private expectedEnds(pool: Pool): ExpectedEnd[] {
    const ends: ExpectedEnd[] = [];
    for (const jobId of this.s.cluster.placedJobIds()) {
      const job = this.s.table.get(jobId);
      const attempt = job?.current;
      if (!job || !attempt || job.spec.pool !== pool) continue;
      const startMs = attempt.startedAtMs ?? attempt.placedAtMs;
      ends.push({ jobId, endMs: job.sched.walltimeMs === undefined ? Number.POSITIVE_INFINITY : Math.max(this.nowMs, startMs + job.sched.walltimeMs) });
    }
    return ends.sort(byEndTime);
  }

  /**
   * Stops lower-priority jobs so that `p` fits, if that is possible; returns the pending reason to show.
   * Only one preemption per job is under way at a time: while its victims are stopping, it waits for them.
   */
  private preempt(p: PreparedJobWithCache): string | undefined {
    const record = this.s.table.get(p.job.id);
    if (!record) return undefined;
    const stopping = record.preempting.filter((id) => this.s.cluster.placementOf(id));
    if (stopping.length > 0) return `waiting for ${stopping.length} preempted job(s) to stop: ${stopping.join(', ')}`;
    const plan = findPreemption(this.s.cluster, p, this.s.policy, (id) => this.victimInfo(id));
    if (!plan) return undefined;
    for (const victim of plan.victims) {
      const v = this.s.table.get(victim)!;
      this.s.metrics.preemptions.inc({ pool: v.spec.pool });
      this.s.commit({
        type: 'preempted',
        jobId: victim,
        attemptId: v.current!.attemptId,
        byJobId: p.job.id,
        reason: `preempted by ${p.job.id} (${p.job.priorityClass})`,
        atMs: this.nowMs,
      });
    }
    return `preempting ${plan.victims.length} lower-priority job(s) to make room: ${plan.victims.join(', ')}`;
  }

  private victimInfo(jobId: string): VictimInfo | undefined {
    const job = this.s.table.get(jobId);
    const attempt = job?.current;
    if (!job || !attempt) return undefined;
    const recent = job.preemptions.filter((at) => this.nowMs - at < HOUR_MS).length;
    return {
      priority: job.sched.priority,
      startedAtMs: attempt.startedAtMs ?? attempt.placedAtMs,
      preemptible: !attempt.stop && recent < this.s.config.preemptionMaxPerHour,
    };
  }
}
