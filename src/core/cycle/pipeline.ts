import { POOLS, type Pool } from '../../protocol';
import type { Reservation } from '../backfill';
import type { ClusterState } from '../cluster';
import type { Placement, PlacementFailure, SchedJob } from '../model';
import { ESCALATION_LEAD_MS } from '../deadline';
import { ESCALATED_PRIORITY, shapeKey, type AttemptOutcome, type CycleReport, type PendingQueue } from '../pending';
import { jobFits, placeJob } from '../placement';
import { observeGpuDemand } from '../gpu-demand';
import { findPreemption } from '../preemption';
import { prepareJob, type PreparedJobWithCache } from '../prepare';
import type { CyclePorts, PipelineSettings, WaitStage } from './ports';
import { quotaBlock } from './quota';

const HOUR_MS = 3_600_000;

/** A pool's EASY reservation: its head job and when it will start. */
export interface PoolReservation {
  head: PreparedJobWithCache;
  reservation: Reservation;
}

/** How one cycle may act. */
export interface CycleOptions {
  /** Placement attempts before the cycle yields (default: no limit). */
  maxAttempts?: number;
  /** Pools that only start jobs in order this cycle (between the backfill passes of a backfill interval). */
  inOrderOnly?: ReadonlySet<Pool>;
}

/** What one decision about one job came to. */
type Decision = { ok: true; placement: Placement } | (Extract<AttemptOutcome, { ok: false }> & { stage: WaitStage });
/** Why a job waits, before the stage is named. */
type WaitOutcome = Omit<Extract<Decision, { ok: false }>, 'stage' | 'ok'>;

/**
 * "May this job start now, and where": one pipeline after kube-scheduler's framework, driven by the
 * service's cycle, its submit fast path and the simulator alike, so a simulated policy is the policy that runs.
 *
 *   PreEnqueue (green hold; a released job waits while its pool is busier than its plan counted on) →
 *   PreFilter (quota) → Filter/Score (placeJob) → PostFilter (preemption, then the EASY reservation of a
 *   backfilling pool's first job that does not fit) → quota of the placement → Permit (the EASY reservation
 *   of another job) → Reserve (power caps) → Bind.
 *
 * A pool's reservation lasts across cycles while nothing frees capacity in the pool (the queue marks it
 * dirty then); its head is the first job of the pool that does not fit, in queue order. The pipeline is
 * pure: time comes in as `nowMs`, the world through the ports. Give it a policy made with
 * `withGpuDemandMix` (and the same to EASY's profile) when a pool scores by GPU fragmentation.
 */
export class SchedulingPipeline {
  private readonly prepared = new WeakMap<SchedJob, PreparedJobWithCache>();
  private readonly reservations = new Map<Pool, PoolReservation>();
  /**
   * Nodes a preempting job is to start on while its victims stop (kube-scheduler's nominated node): the
   * capacity they free is its, and no job of a lower priority may take those nodes meanwhile.
   */
  private readonly nominations = new Map<string, { pool: Pool; priority: number; nodes: ReadonlySet<string> }>();

  constructor(
    readonly cluster: ClusterState,
    readonly pending: PendingQueue,
    readonly settings: PipelineSettings,
    private readonly ports: CyclePorts,
  ) {}

  /** Forgets every reservation and nomination, and the demand mixes learned (a rebuild replays the jobs). */
  reset(): void {
    this.reservations.clear();
    this.nominations.clear();
    for (const pool of POOLS) this.settings.policy[pool].gpuDemand?.reset();
  }

  /** The reservation of a pool's head, if it has one. */
  reservationOf(pool: Pool): PoolReservation | undefined {
    return this.reservations.get(pool);
  }

  /**
   * A job with its placement-independent work done once. The first sight of a job (its arrival: the
   * submit path and the simulator ask first) is when its GPU request joins its pool's demand mix.
   */
  preparedOf(job: SchedJob): PreparedJobWithCache {
    let p = this.prepared.get(job);
    if (!p) {
      this.prepared.set(job, (p = prepareJob(job, this.settings.policy)));
      observeGpuDemand(this.settings.policy, job);
    }
    return p;
  }

  /**
   * Releases held jobs whose time has come, or whose plan the hold port gave up (re-planned when next
   * offered), and escalates those past their promise; marks their pools for a retry.
   */
  wake(nowMs: number): Set<Pool> {
    const pools = this.pending.releaseDue(nowMs);
    for (const jobId of this.ports.hold?.revise?.(nowMs) ?? []) {
      const pool = this.pending.releaseEarly(jobId);
      if (pool) pools.add(pool);
    }
    for (const pool of this.pending.escalateDue(nowMs)) pools.add(pool);
    for (const pool of pools) this.pending.markDirty(pool);
    return pools;
  }

  /** When the pipeline next has something to do on its own (a release or an escalation); Infinity when never. */
  nextWakeMs(): number {
    return this.pending.nextWakeMs();
  }

  /** One scheduling cycle at `nowMs`: offers pending jobs in order, places what may start, and reports. */
  cycle(nowMs: number, options: CycleOptions = {}): CycleReport {
    for (const pool of POOLS) {
      // Capacity changed in a pool (or its reservation's head left the queue): its reservation is found again.
      const r = this.reservations.get(pool);
      if (r && ((this.pending.isDirty(pool) && !options.inOrderOnly?.has(pool)) || !this.pending.has(r.head.job.id))) this.reservations.delete(pool);
    }
    this.ports.power?.beginCycle?.(nowMs);
    // Within a cycle, a shape held back by a reservation at some end time is held back at any later one.
    const heldShapes = new Map<string, number>();
    return this.pending.runCycle(
      (job) => {
        const d = this.decide(job, nowMs, { inOrderOnly: options.inOrderOnly?.has(job.pool) ?? false, heldShapes, fastPath: false });
        if (!d.ok) return d;
        this.ports.bind(job, d.placement, nowMs);
        return { ok: true };
      },
      options.maxAttempts ?? Number.POSITIVE_INFINITY,
      this.settings.order(nowMs),
      this.settings.backfillDepth === undefined ? undefined : (pool) => (this.settings.policy[pool].backfill ? this.settings.backfillDepth! : Number.POSITIVE_INFINITY),
    );
  }

  /**
   * The submit fast path: a placement for a job that has just arrived with nobody queued ahead of it in its
   * pool, if one may start now (no preemption, no reservation: those belong to the cycle). The caller binds it.
   */
  placeNow(job: SchedJob, nowMs: number): Placement | undefined {
    const d = this.decide(job, nowMs, { inOrderOnly: false, heldShapes: new Map(), fastPath: true });
    return d.ok ? d.placement : undefined;
  }

  private decide(job: SchedJob, nowMs: number, ctx: { inOrderOnly: boolean; heldShapes: Map<string, number>; fastPath: boolean }): Decision {
    const { ports } = this;
    // Another scheduler leads the pool: its jobs wait here as they wait there, placed by that leader.
    if (ports.leadership && !ports.leadership.leads(job.pool)) return this.wait(job, nowMs, 'not-leader', { sameForShape: true, reason: ports.leadership.notLeading(job.pool) });
    // PreEnqueue.
    const hold = ports.hold?.hold(job, nowMs);
    if (hold && hold.untilMs > nowMs) return this.wait(job, nowMs, 'green-deferral', { sameForShape: false, hold, reason: hold.reason });
    // Released, it waits while its pool is busier than its plan counted on (until it is escalated).
    const notYet = job.priority === ESCALATED_PRIORITY ? undefined : ports.hold?.admit?.(job, nowMs, this.cluster);
    if (notYet) return this.wait(job, nowMs, 'green-deferral', { sameForShape: false, reason: notYet });
    // PreFilter.
    const quota = ports.quotaOf?.(job.tenant, job.pool);
    const overQuota = quota && quotaBlock(job, quota, this.cluster.usageOf(job.tenant, job.pool));
    if (overQuota) return this.wait(job, nowMs, 'quota', { sameForShape: false, reason: overQuota });
    // A shape the reservation already held back at an earlier end would be held back again: skip the search.
    const reserved = ctx.inOrderOnly ? undefined : this.reservations.get(job.pool);
    const endMs = nowMs + (job.walltimeMs ?? Number.POSITIVE_INFINITY);
    const behind = reserved && reserved.head.job.id !== job.id ? reserved : undefined;
    /** Held back by the reservation; later jobs of the same shape ending no earlier are held back without a search. */
    const holdBack = (reservation: PoolReservation) => {
      const key = shapeKey(job);
      ctx.heldShapes.set(key, Math.min(ctx.heldShapes.get(key) ?? Number.POSITIVE_INFINITY, endMs));
      return this.wait(job, nowMs, 'backfill-reservation', { sameForShape: false, reason: heldBack(reservation) });
    };
    const heldFrom = behind && ctx.heldShapes.get(shapeKey(job));
    if (heldFrom !== undefined && endMs >= heldFrom) return this.wait(job, nowMs, 'backfill-reservation', { sameForShape: false, reason: heldBack(behind!) });
    if (behind && ports.backfill?.(job.pool)?.couldAllow?.(job, endMs) === false) return holdBack(behind);
    // Filter and Score. Behind a reservation, a job that would delay it is placed only where it leaves the
    // head room (as Slurm's backfill plans it); if it fits now but nowhere beside the head, it is held back.
    const p = this.preparedOf(job);
    const place = ports.place ?? placeJob;
    const room = behind && ports.backfill?.(job.pool)?.roomBeside?.(p, endMs);
    let result = place(this.cluster, p, this.settings.policy, room ? { room, explain: false } : undefined);
    if (!result.ok && room) {
      if (jobFits(this.cluster, p)) return holdBack(behind!);
      // It does not fit now at all: the search without the reservation's limit says why.
      result = place(this.cluster, p, this.settings.policy);
    }
    if (!result.ok) return this.postFilter(p, result, nowMs, ctx);
    const placement = result.placement;
    const overQuotaPlaced = quota && quotaBlock(job, quota, this.cluster.usageOf(job.tenant, job.pool), placement);
    if (overQuotaPlaced) return this.wait(job, nowMs, 'quota', { sameForShape: false, reason: overQuotaPlaced });
    // Permit: EASY backfilling protects the reservation of the pool's head.
    if (behind && !ports.backfill!(job.pool)!.allowed(behind.reservation, behind.head, placement, endMs)) return holdBack(behind);
    // Nodes nominated for a higher-priority job whose victims are stopping are its.
    const nominated = this.nominatedFor(job, placement);
    if (nominated) return this.wait(job, nowMs, 'nominated', { sameForShape: false, reason: `held back: ${nominated} is to start on the nodes its preempted jobs free` });
    // Reserve.
    const overBudget = ports.power?.blocks(placement, nowMs);
    if (overBudget) return this.wait(job, nowMs, 'power-budget', { sameForShape: false, reason: overBudget });
    ports.power?.placed?.(placement);
    if (reserved?.head.job.id === job.id) this.reservations.delete(job.pool);
    this.nominations.delete(job.id);
    return { ok: true, placement };
  }

  private wait(job: SchedJob, nowMs: number, stage: WaitStage, outcome: WaitOutcome): Decision {
    this.ports.observe?.(job, stage, nowMs, outcome.failure);
    // The outcome is the caller's fresh object: completed in place (a cycle makes hundreds of these).
    return Object.assign(outcome, { ok: false as const, stage });
  }

  /** The job does not fit now: preemption, else the pool's EASY reservation, else it waits with its shape. */
  private postFilter(
    p: PreparedJobWithCache,
    failure: PlacementFailure,
    nowMs: number,
    ctx: { inOrderOnly: boolean; fastPath: boolean },
  ): Decision {
    const job = p.job;
    if (failure.never) return this.wait(job, nowMs, 'never-fits', { sameForShape: true, failure });
    if (!ctx.fastPath) {
      const preempting = this.preempt(p, nowMs);
      if (preempting) return this.wait(job, nowMs, 'preempting', { sameForShape: false, failure, reason: preempting });
    }
    const backfill = ctx.fastPath || ctx.inOrderOnly ? undefined : this.ports.backfill?.(job.pool);
    if (backfill) {
      let reserved = this.reservations.get(job.pool);
      if (!reserved) {
        const reservation = backfill.reservation(p, nowMs);
        if (reservation) this.reservations.set(job.pool, (reserved = { head: p, reservation }));
      }
      if (reserved?.head.job.id === job.id) {
        return this.wait(job, nowMs, 'backfill-head', { sameForShape: false, failure, reason: `reserved to start at ${iso(reserved.reservation.startMs)} when running jobs reach their walltime (EASY backfill)` });
      }
    }
    return this.wait(job, nowMs, 'no-fit', { sameForShape: true, failure, stop: this.settings.strict || ctx.inOrderOnly });
  }

  /**
   * Stops lower-priority jobs so that `p` fits, if that is possible; returns the pending reason to show.
   * Only one preemption per job is under way at a time: while its victims are stopping, it waits for them.
   * A job is preempted at most preemptionMaxPerHour times an hour (the storm guard), and never when running
   * it again from the start would miss its deadline.
   */
  private preempt(p: PreparedJobWithCache, nowMs: number): string | undefined {
    const port = this.ports.preemption;
    // An escalated job goes first in its pool; it does not stop others (its class is not above theirs).
    if (!port || p.job.priority === ESCALATED_PRIORITY) return undefined;
    const stopping = port.stopping(p.job.id).filter((id) => this.cluster.placementOf(id));
    if (stopping.length > 0) return `waiting for ${stopping.length} preempted job(s) to stop: ${stopping.join(', ')}`;
    this.nominations.delete(p.job.id);
    const maxPerHour = this.settings.preemptionMaxPerHour ?? Number.POSITIVE_INFINITY;
    const plan = findPreemption(this.cluster, p, this.settings.policy, (id) => {
      const v = port.victim(id);
      if (!v) return undefined;
      const recent = v.preemptedAtMs.filter((at) => nowMs - at < HOUR_MS).length;
      return { priority: v.job.priority, startedAtMs: v.startedAtMs, preemptible: !v.stopping && recent < maxPerHour && !wouldMissDeadline(v.job, nowMs) };
    });
    if (!plan) return undefined;
    this.nominations.set(p.job.id, { pool: p.job.pool, priority: p.job.priority, nodes: new Set(plan.placement.tasks.map((t) => t.nodeId)) });
    port.evict(plan.victims, p.job, nowMs);
    return `preempting ${plan.victims.length} lower-priority job(s) to make room: ${plan.victims.join(', ')}`;
  }

  /** The higher-priority job a placement would take nominated nodes from, if any (stale nominations are dropped). */
  private nominatedFor(job: SchedJob, placement: Placement): string | undefined {
    for (const [jobId, n] of this.nominations) {
      if (n.pool !== job.pool || n.priority <= job.priority || jobId === job.id) continue;
      if (!this.pending.has(jobId)) {
        this.nominations.delete(jobId);
        continue;
      }
      if (placement.tasks.some((t) => n.nodes.has(t.nodeId))) return jobId;
    }
    return undefined;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A job with a deadline that a restart soon would miss is not stopped: its deadline is a promise. */
function wouldMissDeadline(job: SchedJob, nowMs: number): boolean {
  const deadlineMs = job.deferrable?.deadlineMs;
  const runMs = job.durationMs ?? job.walltimeMs;
  return deadlineMs !== undefined && runMs !== undefined && nowMs + ESCALATION_LEAD_MS + runMs > deadlineMs;
}

const heldBackReasons = new WeakMap<PoolReservation, string>();

/** Why a job waits behind a reservation (one text per reservation: many jobs wait behind one). */
function heldBack(reserved: PoolReservation): string {
  let reason = heldBackReasons.get(reserved);
  if (reason === undefined) heldBackReasons.set(reserved, (reason = `held back by EASY backfill: it would delay ${reserved.head.job.id}, reserved to start at ${iso(reserved.reservation.startMs)}`));
  return reason;
}
