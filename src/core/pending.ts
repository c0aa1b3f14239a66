import type { Pool } from '../protocol';
import type { PlacementFailure, SchedJob } from './model';
import { JobQueue, byPriorityThenSubmitTime, type JobComparator } from './queue';

/** Why a pending job is still waiting. */
export interface WaitReason {
  /** The placement failure, when it did not fit. */
  failure?: PlacementFailure;
  /** Any other reason (quota, backfill reservation, preemption under way). */
  reason?: string;
}

/**
 * The outcome of one placement attempt, as the caller of a scheduling cycle reports it. `sameForShape` says
 * the failure depends only on what the job asks for, so every job of the same shape would fail too. `stop`
 * ends the cycle: nothing behind this job may start before it (strict first-come first-served).
 */
export type AttemptOutcome = { ok: true } | ({ ok: false; sameForShape: boolean; stop?: boolean } & WaitReason);

/** Jobs of one tenant and shape that could not be placed, with the reason the last one of them got. */
interface ShapeGroup {
  key: string;
  tenant: string;
  pool: Pool;
  queue: JobQueue;
  why: WaitReason;
}

interface TenantQueues {
  active: JobQueue;
  waiting: Map<string, ShapeGroup>;
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
 * Each tenant has its own queue, ordered by priority and submit time. Across tenants a cycle offers, at
 * every step, the best head by the `across` comparator, which is evaluated afresh each time because fair
 * shares move as jobs are placed (priority class first, then weighted dominant share with aging, then
 * submit time: see FairShare).
 *
 * New and requeued jobs are tried on their first cycle. A job that does not fit waits in the group of its
 * tenant and shape (pool, resources, tasks, constraints, data class): jobs of one shape fit or fail
 * together, so after capacity frees up in a pool each group is retried from its best job and stops at its
 * first failure, and within one cycle a shape that failed is not tried again (capacity only shrinks during
 * a cycle) — a long queue of look-alike jobs does not cost one placement attempt each.
 */
export class PendingQueue {
  private readonly tenants = new Map<string, TenantQueues>();
  private readonly groupOfJob = new Map<string, ShapeGroup>();
  private readonly tenantOfActive = new Map<string, string>();
  private readonly dirtyPools = new Set<Pool>();
  private readonly countByPool: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  private readonly countByTenantPool = new Map<string, number>();

  constructor(private readonly withinTenant: JobComparator = byPriorityThenSubmitTime) {}

  get size(): number {
    return this.countByPool.general + this.countByPool.intelligent + this.countByPool.super;
  }

  /** Pending jobs of one pool. */
  sizeOf(pool: Pool): number {
    return this.countByPool[pool];
  }

  /** Pending jobs of one tenant in one pool. */
  sizeOfTenant(tenant: string, pool: Pool): number {
    return this.countByTenantPool.get(`${tenant}\u0000${pool}`) ?? 0;
  }

  private count(job: SchedJob, by: 1 | -1): void {
    this.countByPool[job.pool] += by;
    const key = `${job.tenant}\u0000${job.pool}`;
    const next = (this.countByTenantPool.get(key) ?? 0) + by;
    if (next === 0) this.countByTenantPool.delete(key);
    else this.countByTenantPool.set(key, next);
  }

  has(jobId: string): boolean {
    return this.tenantOfActive.has(jobId) || this.groupOfJob.has(jobId);
  }

  /** Queues a new or requeued job; it is tried in the next cycle. */
  add(job: SchedJob): void {
    if (this.has(job.id)) throw new Error(`job ${job.id} is already pending`);
    this.queuesOf(job.tenant).active.push(job);
    this.tenantOfActive.set(job.id, job.tenant);
    this.count(job, 1);
  }

  /** Takes a job out of the queue (cancelled, or placed outside a cycle); returns it, or undefined. */
  remove(jobId: string): SchedJob | undefined {
    const tenant = this.tenantOfActive.get(jobId);
    if (tenant !== undefined) {
      this.tenantOfActive.delete(jobId);
      const job = this.tenants.get(tenant)!.active.remove(jobId)!;
      this.count(job, -1);
      return job;
    }
    const group = this.groupOfJob.get(jobId);
    if (!group) return undefined;
    const job = group.queue.remove(jobId)!;
    this.groupOfJob.delete(jobId);
    if (group.queue.size === 0) this.tenants.get(group.tenant)!.waiting.delete(group.key);
    this.count(job, -1);
    return job;
  }

  /** Why a pending job has not been placed (undefined until it has been tried). */
  whyWaiting(jobId: string): WaitReason | undefined {
    return this.groupOfJob.get(jobId)?.why;
  }

  /** Capacity may have freed up in a pool: its waiting groups are retried in the next cycle. */
  markDirty(pool: Pool): void {
    this.dirtyPools.add(pool);
  }

  /** Whether a cycle has anything to try. */
  get hasWork(): boolean {
    if (this.tenantOfActive.size > 0) return true;
    for (const pool of this.dirtyPools) if (this.countByPool[pool] > 0) return true;
    return false;
  }

  /** The pending job that goes first in a pool, by the same order a cycle uses (O(tenants + groups)). */
  headOf(pool: Pool, across: JobComparator): SchedJob | undefined {
    let best: SchedJob | undefined;
    for (const q of this.tenants.values()) {
      for (const job of this.headsOf(q, pool)) if (!best || across(job, best) < 0) best = job;
    }
    return best;
  }

  /**
   * Offers pending jobs to `attempt` in order, at most `maxAttempts` times. `attempt` places and reserves
   * the job (returning ok) or reports why it waits. Placed jobs leave the queue.
   */
  runCycle(attempt: (job: SchedJob) => AttemptOutcome, maxAttempts: number, across: JobComparator = this.withinTenant): CycleReport {
    const retry: ShapeGroup[] = [];
    for (const q of this.tenants.values()) for (const g of q.waiting.values()) if (this.dirtyPools.has(g.pool)) retry.push(g);
    this.dirtyPools.clear();
    const failedShapes = new Map<string, WaitReason>();
    // Jobs of a group being retried that failed for a reason of their own: set aside so the group's
    // next job is offered too, and put back when the cycle ends.
    const setAside: [ShapeGroup, SchedJob][] = [];
    try {
      return this.offer(retry, failedShapes, setAside, attempt, maxAttempts, across);
    } finally {
      for (const [group, job] of setAside) this.putBack(group, job);
    }
  }

  /** Returns a set-aside job to its group, or to the group now waiting under its key if that one emptied. */
  private putBack(group: ShapeGroup, job: SchedJob): void {
    const waiting = this.queuesOf(group.tenant).waiting;
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
  ): CycleReport {
    let attempts = 0;
    let placed = 0;
    for (;;) {
      // The best head among every tenant's active queue and the groups still being retried.
      let best: SchedJob | undefined;
      let bestGroup: ShapeGroup | undefined;
      let bestTenant: TenantQueues | undefined;
      for (const q of this.tenants.values()) {
        const head = q.active.peek();
        if (head && (!best || across(head, best) < 0)) {
          best = head;
          bestGroup = undefined;
          bestTenant = q;
        }
      }
      for (const g of retry) {
        const head = g.queue.peek();
        if (head && (!best || across(head, best) < 0)) {
          best = head;
          bestGroup = g;
          bestTenant = undefined;
        }
      }
      if (!best) return { attempts, placed, more: false };
      const key = shapeKey(best);
      const sameShapeFailed = failedShapes.get(key);
      if (sameShapeFailed) {
        // Same shape as a job that just failed to fit: it fails too, without an attempt.
        if (bestGroup) removeItem(retry, bestGroup);
        else this.park(bestTenant!.active.pop()!, sameShapeFailed);
        continue;
      }
      if (attempts >= maxAttempts) {
        // Out of budget: waiting groups not retried yet stay due for the next cycle.
        for (const g of retry) this.dirtyPools.add(g.pool);
        return { attempts, placed, more: true };
      }
      attempts++;
      const outcome = attempt(best);
      if (outcome.ok) {
        // The attempt may already have taken the job out (applying its placement does); make sure.
        this.remove(best.id);
        if (bestGroup && bestGroup.queue.size === 0) removeItem(retry, bestGroup);
        placed++;
        continue;
      }
      const why: WaitReason = { failure: outcome.failure, reason: outcome.reason };
      if (outcome.sameForShape) failedShapes.set(key, why);
      if (bestGroup) {
        bestGroup.why = why;
        if (outcome.sameForShape || outcome.stop) removeItem(retry, bestGroup);
        else setAside.push([bestGroup, bestGroup.queue.pop()!]);
      } else this.park(bestTenant!.active.pop()!, why);
      if (outcome.stop) {
        // The next cycle starts again from the job that stopped this one (so no later arrival overtakes
        // it), and groups not retried yet stay due.
        this.dirtyPools.add(best.pool);
        for (const g of retry) this.dirtyPools.add(g.pool);
        return { attempts, placed, more: false };
      }
    }
  }

  /** Jobs in queue order (O(n log n); for listings). */
  jobs(across: JobComparator = this.withinTenant): SchedJob[] {
    const all: SchedJob[] = [];
    for (const q of this.tenants.values()) {
      all.push(...q.active.toSortedArray());
      for (const g of q.waiting.values()) all.push(...g.queue.toSortedArray());
    }
    return all.sort(across);
  }

  private *headsOf(q: TenantQueues, pool: Pool): Generator<SchedJob> {
    // The active queue is ordered by priority and time, not by pool: its best job of the pool is found by scanning.
    let bestActive: SchedJob | undefined;
    for (const job of q.active.values()) if (job.pool === pool && (!bestActive || this.withinTenant(job, bestActive) < 0)) bestActive = job;
    if (bestActive) yield bestActive;
    for (const g of q.waiting.values()) if (g.pool === pool && g.queue.peek()) yield g.queue.peek()!;
  }

  private queuesOf(tenant: string): TenantQueues {
    let q = this.tenants.get(tenant);
    if (!q) this.tenants.set(tenant, (q = { active: new JobQueue(this.withinTenant), waiting: new Map() }));
    return q;
  }

  private park(job: SchedJob, why: WaitReason): void {
    this.tenantOfActive.delete(job.id);
    const q = this.queuesOf(job.tenant);
    const key = shapeKey(job);
    let group = q.waiting.get(key);
    if (!group) q.waiting.set(key, (group = { key, tenant: job.tenant, pool: job.pool, queue: new JobQueue(this.withinTenant), why }));
    else group.why = why;
    group.queue.push(job);
    this.groupOfJob.set(job.id, group);
  }
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

function removeItem<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
