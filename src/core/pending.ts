import { POOLS, type Pool } from '../protocol';
import { escalationAtOf } from './deadline';
import { MinHeap } from './min-heap';
import type { PlacementFailure, SchedJob } from './model';
import { offerOrder, type OfferSource } from './offer-order';
import { JobQueue, byPriorityThenSubmitTime, type JobComparator } from './queue';

/** Why a pending job is still waiting. */
export interface WaitReason {
  /** The placement failure, when it did not fit. */
  failure?: PlacementFailure;
  /** Any other reason (quota, backfill reservation, preemption under way, a green hold). */
  reason?: string;
}

/** A job held out of the queue until a later time (PreEnqueue), and when it is escalated if it still waits then. */
export interface Hold {
  untilMs: number;
  /** Once released, a job still pending at this time goes ahead of every priority class. */
  escalateAtMs?: number;
  reason: string;
}

/**
 * The outcome of one placement attempt, as the caller of a scheduling cycle reports it. `sameForShape` says
 * the failure depends only on what the job asks for, so every job of the same shape would fail too. `stop`
 * ends the cycle for the job's pool: nothing behind this job in that pool may start before it (strict
 * first-come first-served). `hold` takes the job out of the queue until `hold.untilMs`.
 */
export type AttemptOutcome = { ok: true } | ({ ok: false; sameForShape: boolean; stop?: boolean; hold?: Hold } & WaitReason);

/**
 * How far a job released from a hold drops below its class until it is escalated: behind every job of its
 * class that cannot wait (priority classes are whole numbers), ahead of the classes below. A deferred job
 * declared it can wait, and its escalation keeps its deadline; without this, deferred work released into a
 * green hour would queue ahead of the jobs that arrived meanwhile by its older submission, and they, which
 * green-blind scheduling would have started, would wait for it.
 */
export const RELEASED_YIELD = 0.5;

/** Above every priority class: a job released from a hold that is about to break its promise. */
export const ESCALATED_PRIORITY = Number.MAX_SAFE_INTEGER;

/** Jobs of one tenant and shape that could not be placed, with the reason the last one of them got. */
interface ShapeGroup {
  key: string;
  queues: TenantPoolQueues;
  queue: JobQueue;
  why: WaitReason;
  /** This group as a cycle offers from it (made once). */
  source?: Source;
}

/** One tenant's jobs in one pool: those to try (active) and those waiting by shape. */
interface TenantPoolQueues {
  tenant: string;
  pool: Pool;
  active: JobQueue;
  waiting: Map<string, ShapeGroup>;
  /** The active queue as a cycle offers from it (made once). */
  source?: Source;
}

interface HeldJob {
  job: SchedJob;
  hold: Hold;
}

/** What one scheduling cycle did. */
export interface CycleReport {
  attempts: number;
  placed: number;
  /** True when the attempt budget ran out with jobs still to try: run another cycle soon. */
  more: boolean;
}

/**
 * The pending jobs and the order in which a scheduling cycle offers them for placement.
 *
 * Each tenant has its own queue per pool, ordered by priority and submit time. Across tenants a cycle
 * offers, at every step, the best head by the `across` comparator, which is evaluated afresh each time
 * because fair shares move as jobs are placed (priority class first, then weighted dominant share with
 * aging, then submit time: see FairShare).
 *
 * New and requeued jobs are tried on their first cycle. A job that does not fit waits in the group of its
 * tenant and shape (pool, resources, tasks, constraints, data class): jobs of one shape fit or fail
 * together, so after capacity frees up in a pool each group is retried from its best job and stops at its
 * first failure, and within one cycle a shape that failed is not tried again (capacity only shrinks during
 * a cycle) — a long queue of look-alike jobs does not cost one placement attempt each.
 *
 * A job may also be held (a green deferral): it leaves the queue until its time comes (`releaseDue`), and
 * if it still waits at its escalation time it goes ahead of every class (`escalateDue`), so a hold never
 * costs the job its deadline.
 */
export class PendingQueue {
  private readonly queues = new Map<string, TenantPoolQueues>();
  private readonly groupOfJob = new Map<string, ShapeGroup>();
  private readonly queuesOfActive = new Map<string, TenantPoolQueues>();
  private readonly held = new Map<string, HeldJob>();
  private readonly releases = new MinHeap<string>();
  private readonly escalations = new MinHeap<string>();
  private readonly dirtyPools = new Set<Pool>();
  private readonly countByPool: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  private readonly heldByPool: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  private readonly countByTenantPool = new Map<string, number>();

  constructor(private readonly withinTenant: JobComparator = byPriorityThenSubmitTime) {}

  /** Forgets every job (a rebuild starts from an empty queue). */
  reset(): void {
    this.queues.clear();
    this.groupOfJob.clear();
    this.queuesOfActive.clear();
    this.held.clear();
    this.releases.clear();
    this.escalations.clear();
    this.dirtyPools.clear();
    this.countByTenantPool.clear();
    for (const pool of POOLS) {
      this.countByPool[pool] = 0;
      this.heldByPool[pool] = 0;
    }
  }

  get size(): number {
    return this.countByPool.general + this.countByPool.intelligent + this.countByPool.super;
  }

  /** Pending jobs of one pool, held ones included. */
  sizeOf(pool: Pool): number {
    return this.countByPool[pool];
  }

  /** Jobs of one pool that a cycle may offer now (held ones excluded): a newcomer would wait behind them. */
  queuedIn(pool: Pool): number {
    return this.countByPool[pool] - this.heldByPool[pool];
  }

  /** Held jobs of one pool. */
  heldIn(pool: Pool): number {
    return this.heldByPool[pool];
  }

  /** Pending jobs of one tenant in one pool, held ones included. */
  sizeOfTenant(tenant: string, pool: Pool): number {
    return this.countByTenantPool.get(tenantPoolKey(tenant, pool)) ?? 0;
  }

  private count(job: SchedJob, by: 1 | -1): void {
    this.countByPool[job.pool] += by;
    const key = tenantPoolKey(job.tenant, job.pool);
    const next = (this.countByTenantPool.get(key) ?? 0) + by;
    if (next === 0) this.countByTenantPool.delete(key);
    else this.countByTenantPool.set(key, next);
  }

  has(jobId: string): boolean {
    return this.queuesOfActive.has(jobId) || this.groupOfJob.has(jobId) || this.held.has(jobId);
  }

  /** The queued job (the escalated copy, once escalated). */
  get(jobId: string): SchedJob | undefined {
    const q = this.queuesOfActive.get(jobId);
    if (q) return q.active.get(jobId);
    return this.groupOfJob.get(jobId)?.queue.get(jobId) ?? this.held.get(jobId)?.job;
  }

  /** Queues a new or requeued job; it is tried in the next cycle. */
  add(job: SchedJob): void {
    if (this.has(job.id)) throw new Error(`job ${job.id} is already pending`);
    this.activate(job);
    this.count(job, 1);
    // A job with a latest start that still waits at its safety margin before it goes ahead of every class (its promise).
    const escalateAtMs = escalationAtOf(job);
    if (escalateAtMs !== undefined) this.escalations.push(escalateAtMs, job.id);
  }

  private activate(job: SchedJob): void {
    const q = this.queuesOf(job.tenant, job.pool);
    q.active.push(job);
    this.queuesOfActive.set(job.id, q);
  }

  /** Takes a job out of the queue (cancelled, or placed outside a cycle); returns it, or undefined. */
  remove(jobId: string): SchedJob | undefined {
    const job = this.detach(jobId);
    if (job) this.count(job, -1);
    return job;
  }

  /** Takes a job out of wherever it waits, without changing the counts. */
  private detach(jobId: string): SchedJob | undefined {
    const q = this.queuesOfActive.get(jobId);
    if (q) {
      this.queuesOfActive.delete(jobId);
      return q.active.remove(jobId)!;
    }
    const group = this.groupOfJob.get(jobId);
    if (group) {
      const job = group.queue.remove(jobId)!;
      this.groupOfJob.delete(jobId);
      if (group.queue.size === 0) group.queues.waiting.delete(group.key);
      return job;
    }
    const held = this.held.get(jobId);
    if (held) {
      // Its entry in `releases` is dropped lazily, when it comes up.
      this.held.delete(jobId);
      this.heldByPool[held.job.pool]--;
      return held.job;
    }
    return undefined;
  }

  /** Why a pending job has not been placed (undefined until it has been tried). */
  whyWaiting(jobId: string): WaitReason | undefined {
    const held = this.held.get(jobId);
    if (held) return { reason: held.hold.reason };
    return this.groupOfJob.get(jobId)?.why;
  }

  /** Until when a job is held, if it is. */
  holdOf(jobId: string): Hold | undefined {
    return this.held.get(jobId)?.hold;
  }

  /** Held jobs, soonest release first (for listings). */
  heldJobs(): { job: SchedJob; hold: Hold }[] {
    return [...this.held.values()].sort((a, b) => a.hold.untilMs - b.hold.untilMs);
  }

  /** Capacity may have freed up in a pool: its waiting groups are retried in the next cycle. */
  markDirty(pool: Pool): void {
    this.dirtyPools.add(pool);
  }

  /** Whether the pool's waiting jobs are due for a retry in the next cycle. */
  isDirty(pool: Pool): boolean {
    return this.dirtyPools.has(pool);
  }

  /** Whether a cycle has anything to try. */
  get hasWork(): boolean {
    if (this.queuesOfActive.size > 0) return true;
    for (const pool of this.dirtyPools) if (this.queuedIn(pool) > 0) return true;
    return false;
  }

  /** The earliest time a held job is released or a released one escalated (Infinity when none). */
  nextWakeMs(): number {
    while (this.releases.size > 0 && !this.isHeldUntil(this.releases.peek()!, this.releases.peekKey())) this.releases.pop();
    return Math.min(this.releases.peekKey(), this.escalations.peekKey());
  }

  private isHeldUntil(jobId: string, atMs: number): boolean {
    return this.held.get(jobId)?.hold.untilMs === atMs;
  }

  /** Returns held jobs whose time has come to the queue; returns their pools. */
  releaseDue(nowMs: number): Set<Pool> {
    const pools = new Set<Pool>();
    while (this.releases.size > 0 && this.releases.peekKey() <= nowMs) {
      const atMs = this.releases.peekKey();
      const jobId = this.releases.pop()!;
      if (!this.isHeldUntil(jobId, atMs)) continue;
      const { job, hold } = this.held.get(jobId)!;
      this.held.delete(jobId);
      this.heldByPool[job.pool]--;
      this.activate(yielding(job));
      if (hold.escalateAtMs !== undefined) this.escalations.push(Math.max(nowMs, hold.escalateAtMs), jobId);
      pools.add(job.pool);
    }
    return pools;
  }

  /** Returns a held job to the queue before its time (its plan was given up); returns its pool, or undefined when it is not held. */
  releaseEarly(jobId: string): Pool | undefined {
    const held = this.held.get(jobId);
    if (!held) return undefined;
    // Its entry in `releases` is dropped lazily, when it comes up; the escalation near its latest start stays.
    this.held.delete(jobId);
    this.heldByPool[held.job.pool]--;
    this.activate(yielding(held.job));
    return held.job.pool;
  }

  /** Jobs still waiting at their escalation time (released from a hold, or near their latest start) go ahead of every class; returns their pools. */
  escalateDue(nowMs: number): Set<Pool> {
    const pools = new Set<Pool>();
    while (this.escalations.size > 0 && this.escalations.peekKey() <= nowMs) {
      const jobId = this.escalations.pop()!;
      if (this.held.has(jobId)) continue;
      const job = this.detach(jobId);
      if (!job) continue;
      this.activate(job.priority === ESCALATED_PRIORITY ? job : { ...job, priority: ESCALATED_PRIORITY });
      pools.add(job.pool);
    }
    return pools;
  }

  /**
   * Offers pending jobs to `attempt` in order, at most `maxAttempts` times. `attempt` places and reserves
   * the job (returning ok) or reports why it waits. Placed jobs leave the queue.
   */
  runCycle(attempt: (job: SchedJob) => AttemptOutcome, maxAttempts: number, across: JobComparator = this.withinTenant, maxAttemptsOf?: (pool: Pool) => number): CycleReport {
    const retry: ShapeGroup[] = [];
    for (const [key, q] of this.queues) {
      // A tenant's queues of a pool with nothing left are forgotten (before the cycle, never during it):
      // every step of a cycle looks at every set of queues there is.
      if (q.active.size === 0 && q.waiting.size === 0) this.queues.delete(key);
      else if (this.dirtyPools.has(q.pool)) for (const g of q.waiting.values()) retry.push(g);
    }
    this.dirtyPools.clear();
    const failedShapes = new Map<string, WaitReason>();
    // Jobs of a group being retried that failed for a reason of their own: set aside so the group's
    // next job is offered too, and put back when the cycle ends.
    const setAside: [ShapeGroup, SchedJob][] = [];
    try {
      return this.offer(retry, failedShapes, setAside, attempt, maxAttempts, across, maxAttemptsOf);
    } finally {
      for (const [group, job] of setAside) this.putBack(group, job);
    }
  }

  /** Returns a set-aside job to its group, or to the group now waiting under its key if that one emptied. */
  private putBack(group: ShapeGroup, job: SchedJob): void {
    const waiting = group.queues.waiting;
    const current = waiting.get(group.key);
    if (!current) waiting.set(group.key, group);
    const target = current ?? group;
    target.queue.push(job);
    this.groupOfJob.set(job.id, target);
  }

  private offer(
    retry: ShapeGroup[],
    failedShapes: Map<string, WaitReason>,
    setAside: [ShapeGroup, SchedJob][],
    attempt: (job: SchedJob) => AttemptOutcome,
    maxAttempts: number,
    across: JobComparator,
    maxAttemptsOf: ((pool: Pool) => number) | undefined,
  ): CycleReport {
    let attempts = 0;
    let placed = 0;
    // Pools stopped by a strict first-come first-served failure, or out of their own attempts (a bounded
    // look-ahead): nothing more of theirs is offered this cycle. Waiting jobs a bounded pool did not reach
    // wait for its next change, as jobs past Slurm's bf_max_job_test wait for the next backfill pass.
    const stopped = new Set<Pool>();
    const attemptsOf: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
    // The best head among every tenant's active queues and the groups being retried, at every step.
    const sources: Source[] = [];
    for (const q of this.queues.values()) sources.push((q.source ??= { kind: 'active', pool: q.pool, queue: q.active, q }));
    for (const g of retry) sources.push((g.source ??= { kind: 'group', pool: g.queues.pool, queue: g.queue, g }));
    const order = offerOrder(across, sources);
    for (;;) {
      const next = order.next(stopped);
      if (!next) return { attempts, placed, more: false };
      const { source, head: best } = next;
      const bestGroup = source.kind === 'group' ? source.g : undefined;
      const bestQueues = source.kind === 'active' ? source.q : undefined;
      const key = shapeKey(best);
      const sameShapeFailed = failedShapes.get(key);
      if (sameShapeFailed) {
        // Same shape as a job that just failed to fit: it fails too, without an attempt.
        if (bestGroup) order.drop(source);
        else {
          this.park(bestQueues!, bestQueues!.active.pop()!, sameShapeFailed);
          order.keep(source);
        }
        continue;
      }
      if (attempts >= maxAttempts) {
        // Out of budget: waiting groups not retried yet stay due for the next cycle.
        for (const s of order.remaining()) if (s.kind === 'group') this.dirtyPools.add(s.pool);
        return { attempts, placed, more: true };
      }
      attempts++;
      if (maxAttemptsOf && ++attemptsOf[best.pool] >= maxAttemptsOf(best.pool)) stopped.add(best.pool);
      const outcome = attempt(best);
      if (outcome.ok) {
        // The attempt may already have taken the job out (applying its placement does); make sure.
        this.remove(best.id);
        order.keep(source);
        placed++;
        continue;
      }
      if (outcome.hold) {
        this.detach(best.id);
        this.hold(best, outcome.hold);
        order.keep(source);
        continue;
      }
      const why: WaitReason = { failure: outcome.failure, reason: outcome.reason };
      if (outcome.sameForShape) failedShapes.set(key, why);
      if (bestGroup) {
        bestGroup.why = why;
        if (outcome.sameForShape || outcome.stop) order.drop(source);
        else {
          setAside.push([bestGroup, bestGroup.queue.pop()!]);
          order.keep(source);
        }
      } else {
        this.park(bestQueues!, bestQueues!.active.pop()!, why);
        order.keep(source);
      }
      if (outcome.stop) {
        // The next cycle starts this pool again from the job that stopped it, so no later arrival overtakes it.
        stopped.add(best.pool);
        this.dirtyPools.add(best.pool);
      }
    }
  }

  private hold(job: SchedJob, hold: Hold): void {
    this.held.set(job.id, { job, hold });
    this.heldByPool[job.pool]++;
    this.releases.push(hold.untilMs, job.id);
  }

  /** Jobs in queue order, held ones last (O(n log n); for listings). */
  jobs(across: JobComparator = this.withinTenant): SchedJob[] {
    const all: SchedJob[] = [];
    for (const q of this.queues.values()) {
      all.push(...q.active.values());
      for (const g of q.waiting.values()) all.push(...g.queue.values());
    }
    return [...all.sort(across), ...this.heldJobs().map((h) => h.job)];
  }

  private queuesOf(tenant: string, pool: Pool): TenantPoolQueues {
    const key = tenantPoolKey(tenant, pool);
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = { tenant, pool, active: new JobQueue(this.withinTenant), waiting: new Map() }));
    return q;
  }

  private park(q: TenantPoolQueues, job: SchedJob, why: WaitReason): void {
    this.queuesOfActive.delete(job.id);
    const key = shapeKey(job);
    let group = q.waiting.get(key);
    if (!group) q.waiting.set(key, (group = { key, queues: q, queue: new JobQueue(this.withinTenant), why }));
    else group.why = why;
    group.queue.push(job);
    this.groupOfJob.set(job.id, group);
  }
}

function tenantPoolKey(tenant: string, pool: Pool): string {
  return `${tenant}\u0000${pool}`;
}

const shapeKeys = new WeakMap<SchedJob, string>();

/**
 * Jobs with equal shape keys fit or fail together: everything placement reads of a job but its identity.
 * Restricted jobs depend on their tenant too (tenant isolation), so for them the tenant is part of the shape.
 */
export function shapeKey(job: SchedJob): string {
  let key = shapeKeys.get(job);
  if (key === undefined) {
    key = JSON.stringify([job.pool, job.task, job.tasks, job.exclusive, job.constraints, job.dataClass, job.dataClass === 'restricted' ? job.tenant : '']);
    shapeKeys.set(job, key);
  }
  return key;
}

/** Where a cycle takes its next job from (see OfferOrder). */
type Source = ({ kind: 'active'; q: TenantPoolQueues } | { kind: 'group'; g: ShapeGroup }) & OfferSource;

/** A job released from a hold, queued behind the jobs of its class that cannot wait (see {@link RELEASED_YIELD}). */
function yielding(job: SchedJob): SchedJob {
  return job.priority === ESCALATED_PRIORITY ? job : { ...job, priority: job.priority - RELEASED_YIELD };
}
