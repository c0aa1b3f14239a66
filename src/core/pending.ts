import type { Pool } from '../protocol';
import type { PlacementFailure, SchedJob } from './model';
import { JobQueue, byPriorityThenSubmitTime, type JobComparator } from './queue';

/** The outcome of one placement attempt, as the caller of a scheduling cycle reports it. */
export type AttemptOutcome = { ok: true } | { ok: false; failure: PlacementFailure };

/** Jobs of one shape that could not be placed, with the reason the last one of them got. */
interface ShapeGroup {
  key: string;
  pool: Pool;
  queue: JobQueue;
  failure?: PlacementFailure;
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
 * New and requeued jobs wait in `active` until they are tried. A job that does not fit moves to the
 * waiting group of its shape (pool, resources, tasks, constraints, data class): jobs of the same shape
 * fit or fail together, so after capacity frees up in a pool a cycle retries each shape from its best job
 * and stops at the shape's first failure. Within a cycle a shape that failed is not tried again (capacity
 * only shrinks during a cycle), which keeps a long queue of look-alike jobs from costing one placement
 * attempt each. Across sources, jobs are offered in the comparator's order.
 */
export class PendingQueue {
  private readonly active: JobQueue;
  private readonly groups = new Map<string, ShapeGroup>();
  private readonly groupOfJob = new Map<string, ShapeGroup>();
  private readonly dirtyPools = new Set<Pool>();
  private readonly countByPool: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };

  constructor(private readonly compare: JobComparator = byPriorityThenSubmitTime) {
    this.active = new JobQueue(compare);
  }

  get size(): number {
    return this.countByPool.general + this.countByPool.intelligent + this.countByPool.super;
  }

  /** Pending jobs of one pool. */
  sizeOf(pool: Pool): number {
    return this.countByPool[pool];
  }

  has(jobId: string): boolean {
    return this.active.has(jobId) || this.groupOfJob.has(jobId);
  }

  /** Queues a new or requeued job; it is tried in the next cycle. */
  add(job: SchedJob): void {
    if (this.has(job.id)) throw new Error(`job ${job.id} is already pending`);
    this.active.push(job);
    this.countByPool[job.pool]++;
  }

  /** Takes a job out of the queue (cancelled); returns it, or undefined if it was not pending. */
  remove(jobId: string): SchedJob | undefined {
    const fromActive = this.active.remove(jobId);
    if (fromActive) {
      this.countByPool[fromActive.pool]--;
      return fromActive;
    }
    const group = this.groupOfJob.get(jobId);
    if (!group) return undefined;
    const job = group.queue.remove(jobId)!;
    this.groupOfJob.delete(jobId);
    if (group.queue.size === 0) this.groups.delete(group.key);
    this.countByPool[job.pool]--;
    return job;
  }

  /** Why a pending job has not been placed yet (undefined until it has been tried). */
  failureOf(jobId: string): PlacementFailure | undefined {
    return this.groupOfJob.get(jobId)?.failure;
  }

  /** Capacity may have freed up in a pool: its waiting shapes are retried in the next cycle. */
  markDirty(pool: Pool): void {
    this.dirtyPools.add(pool);
  }

  /** Whether a cycle has anything to try. */
  get hasWork(): boolean {
    if (this.active.size > 0) return true;
    for (const pool of this.dirtyPools) if (this.countByPool[pool] > 0) return true;
    return false;
  }

  /**
   * Offers pending jobs to `attempt` in order, at most `maxAttempts` times. `attempt` places and reserves
   * the job (returning ok) or reports why it does not fit. Placed jobs leave the queue.
   */
  runCycle(attempt: (job: SchedJob) => AttemptOutcome, maxAttempts: number): CycleReport {
    const retry: ShapeGroup[] = [];
    for (const pool of this.dirtyPools) for (const g of this.groups.values()) if (g.pool === pool) retry.push(g);
    this.dirtyPools.clear();
    const failedShapes = new Set<string>();
    let attempts = 0;
    let placed = 0;

    for (;;) {
      // The best head among the active queue and the shape groups still being retried.
      let source: JobQueue | undefined = this.active.size > 0 ? this.active : undefined;
      let best = source?.peek();
      let bestGroup: ShapeGroup | undefined;
      for (const g of retry) {
        const head = g.queue.peek();
        if (head && (!best || this.compare(head, best) < 0)) {
          best = head;
          source = g.queue;
          bestGroup = g;
        }
      }
      if (!best || !source) return { attempts, placed, more: false };
      const key = shapeKey(best);
      if (failedShapes.has(key)) {
        // Same shape as a job that just failed: it fails too, without an attempt.
        if (bestGroup) removeItem(retry, bestGroup);
        else this.park(this.active.pop()!, key, undefined);
        continue;
      }
      if (attempts >= maxAttempts) {
        // Out of budget: waiting shapes still unretried stay dirty for the next cycle.
        for (const g of retry) this.dirtyPools.add(g.pool);
        return { attempts, placed, more: true };
      }
      attempts++;
      const outcome = attempt(best);
      if (outcome.ok) {
        // The attempt may already have taken the job out (applying its placement does); make sure.
        this.remove(best.id);
        if (bestGroup && !this.groups.has(bestGroup.key)) removeItem(retry, bestGroup);
        placed++;
        continue;
      }
      failedShapes.add(key);
      if (bestGroup) {
        bestGroup.failure = outcome.failure;
        removeItem(retry, bestGroup);
      } else this.park(this.active.pop()!, key, outcome.failure);
    }
  }

  /** Jobs in queue order (O(n log n); for listings). */
  jobs(): SchedJob[] {
    const all = [...this.active.toSortedArray()];
    for (const g of this.groups.values()) all.push(...g.queue.toSortedArray());
    return all.sort(this.compare);
  }

  private park(job: SchedJob, key: string, failure: PlacementFailure | undefined): void {
    let group = this.groups.get(key);
    if (!group) {
      group = { key, pool: job.pool, queue: new JobQueue(this.compare), failure };
      this.groups.set(key, group);
    } else if (failure) group.failure = failure;
    group.queue.push(job);
    this.groupOfJob.set(job.id, group);
  }
}

const shapeKeys = new WeakMap<SchedJob, string>();

/** Jobs with equal shape keys fit or fail together: everything placement reads of a job but its identity. */
export function shapeKey(job: SchedJob): string {
  let key = shapeKeys.get(job);
  if (key === undefined) {
    key = JSON.stringify([job.pool, job.task, job.tasks, job.exclusive, job.constraints, job.dataClass]);
    shapeKeys.set(job, key);
  }
  return key;
}

function removeItem<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
