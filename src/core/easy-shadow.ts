import type { NodeSpec, NodeState } from '../protocol';
import { byEndTime, finitePrefix, type ExpectedEnd, type Reservation } from './backfill';
import { ClusterState } from './cluster';
import type { Policy } from './framework';
import type { Placement } from './model';
import { placeJob } from './placement';
import type { PreparedJobWithCache } from './prepare';
import { SortedEnds } from './sorted-ends';

/** Before every end: the boundary when no job counts as ended. */
const NOTHING_ENDED: ExpectedEnd = { jobId: '', endMs: Number.NEGATIVE_INFINITY };

/**
 * EASY backfilling kept up to date incrementally, for a caller that sees every start and end in a pool
 * (the simulator, which replays hundreds of thousands of them). It gives the same reservations as
 * easyReservation and the same answers as backfillAllowed, without releasing and restoring the jobs that
 * end before the reservation at every question.
 *
 * It keeps a shadow of the pool as it will be at the reservation: every running job except those expected
 * to end by the boundary (the last of them in end order). As jobs start and end the shadow follows; when
 * asked for the head's reservation it moves the boundary only as far as it must — after a job ends, one
 * placement attempt usually confirms that the head still needs everything before the boundary.
 */
export class EasyShadow {
  private readonly shadow = new ClusterState();
  private readonly ends = new SortedEnds();
  private readonly running = new Map<string, { placement: Placement; end: ExpectedEnd }>();
  /** Running jobs up to here, in end order, count as ended: they are not in the shadow. */
  private boundary = NOTHING_ENDED;
  private head: PreparedJobWithCache | undefined;
  private headNodes = new Set<string>();

  constructor(private readonly policy: Policy) {}

  /** Registers a node of the pool (or updates it). */
  upsertNode(spec: NodeSpec): void {
    this.shadow.upsertNode(spec);
  }

  setNodeState(nodeId: string, state: NodeState): void {
    this.shadow.setNodeState(nodeId, state);
  }

  /** A job started on `placement` and is expected to end at `endMs` (Infinity without a walltime). */
  started(placement: Placement, endMs: number): void {
    const end = { jobId: placement.jobId, endMs };
    this.running.set(placement.jobId, { placement, end });
    this.ends.insert(end);
    if (byEndTime(end, this.boundary) > 0) this.shadow.reserve(placement);
  }

  /** A job ended (or was stopped). */
  ended(jobId: string): void {
    const r = this.running.get(jobId);
    if (!r) return;
    this.running.delete(jobId);
    this.ends.remove(r.end);
    this.shadow.release(jobId);
  }

  /**
   * The reservation of `head`, the first job of the queue, which does not fit now; null when it could not
   * start even after every running job with a walltime has ended.
   */
  reservation(head: PreparedJobWithCache, nowMs: number): Reservation | null {
    if (this.head?.job.id !== head.job.id) this.reset(head);
    const { prefix, readUpTo } = finitePrefix(this.ends);
    // k: how many running jobs, in end order, count as ended now.
    let k = 0;
    while (readUpTo(k + 1) > k && byEndTime(prefix[k], this.boundary) <= 0) k++;
    const endFirst = (n: number) => {
      for (; k < n; k++) this.shadow.release(prefix[k].jobId);
      while (k > n) this.shadow.restore(this.running.get(prefix[--k].jobId)!.placement);
    };
    const nodesAfter = new Map<number, Set<string>>();
    const fits = () => {
      const result = placeJob(this.shadow, head, this.policy);
      if (result.ok) nodesAfter.set(k, new Set(result.placement.tasks.map((t) => t.nodeId)));
      return result.ok;
    };

    if (fits()) {
      // Jobs ended early or the head needs less than thought: give back ends, latest first, while it still fits.
      while (k > 0) {
        endFirst(k - 1);
        if (!fits()) {
          endFirst(k + 1);
          break;
        }
      }
    } else {
      // More must end first: double the jobs ended until it fits, then bisect.
      let lo = k;
      let hi = k;
      for (let step = 1; ; step *= 2) {
        const n = readUpTo(lo + step);
        if (n === lo) {
          this.boundary = k > 0 ? prefix[k - 1] : NOTHING_ENDED;
          return null;
        }
        endFirst(n);
        if (fits()) {
          hi = n;
          break;
        }
        lo = n;
      }
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        endFirst(mid);
        if (fits()) hi = mid;
        else lo = mid;
      }
      endFirst(hi);
    }
    this.boundary = k > 0 ? prefix[k - 1] : NOTHING_ENDED;
    this.headNodes = nodesAfter.get(k) ?? new Set();
    return {
      jobId: head.job.id,
      startMs: Math.max(nowMs, k > 0 ? prefix[k - 1].endMs : nowMs),
      endedBefore: prefix.slice(0, k).map((e) => e.jobId),
      headNodes: this.headNodes,
    };
  }

  /**
   * Whether a job may start now on `placement`, ending by `endMs`, without delaying the reservation last
   * given (see backfillAllowed): it ends by then, or takes none of the head's nodes, or the head still fits
   * in the shadow beside it.
   */
  allowed(placement: Placement, endMs: number): boolean {
    if (!this.head || byEndTime({ jobId: placement.jobId, endMs }, this.boundary) <= 0) return true;
    if (!placement.tasks.some((t) => this.headNodes.has(t.nodeId))) return true;
    const rotation = this.shadow.rotation;
    try {
      this.shadow.reserve(placement);
    } catch {
      return false;
    }
    try {
      const result = placeJob(this.shadow, this.head, this.policy);
      if (result.ok) this.headNodes = new Set(result.placement.tasks.map((t) => t.nodeId));
      return result.ok;
    } finally {
      this.shadow.release(placement.jobId);
      this.shadow.rotation = rotation;
    }
  }

  /** A new head: every job counted as ended is put back, and its reservation is found from scratch. */
  private reset(head: PreparedJobWithCache): void {
    for (const e of this.ends) {
      if (byEndTime(e, this.boundary) > 0) break;
      this.shadow.restore(this.running.get(e.jobId)!.placement);
    }
    this.boundary = NOTHING_ENDED;
    this.head = head;
    this.headNodes = new Set();
  }
}
