import type { ClusterState } from './cluster';
import type { NodeRuntime } from './node-runtime';
import type { Policy } from './framework';
import type { Placement, SchedJob } from './model';
import { placeJob } from './placement';
import type { PreparedJobWithCache } from './prepare';

/** Look-ahead only asks whether a job fits. */
const QUIET = { explain: false };

/** When a running job is expected to end: its start plus its walltime. */
export interface ExpectedEnd {
  jobId: string;
  endMs: number;
}

/**
 * EASY backfilling's reservation for the job at the head of a pool's queue: the earliest time enough
 * running jobs have ended (by their walltimes) for it to fit, and where it is planned to start then.
 */
export interface Reservation {
  jobId: string;
  startMs: number;
  /** The last running job, in end order, that counts as ended by `startMs` (jobs up to it have ended). */
  boundary: ExpectedEnd;
  /** Where the head is planned to start: a job may start now only if it leaves room for this. */
  headPlacement: Placement;
}

/**
 * EASY backfilling of one pool as the scheduling cycle asks it: the reservation of the head (the first job
 * that does not fit), and whether another job may start now without delaying it. EasyShadow implements it,
 * for the service and the simulator alike.
 */
export interface BackfillProfile {
  /** The head's reservation, or null when it cannot start even after every running job with a walltime has ended. */
  reservation(head: PreparedJobWithCache, nowMs: number): Reservation | null;
  /** Whether a job may start now on `placement`, ending by `endMs`, without delaying `reservation` of `head`. */
  allowed(reservation: Reservation, head: PreparedJobWithCache, placement: Placement, endMs: number): boolean;
  /**
   * A necessary condition of `allowed`, in O(1) and before any placement is searched: false when the job,
   * ending by `endMs`, could not start now anywhere without delaying the reservation.
   */
  couldAllow?(job: SchedJob, endMs: number): boolean;
  /**
   * Where a job ending by `endMs` may go now without delaying the reservation: per node, at most how many of
   * its tasks (Slurm's backfill plans a job only on resources the reservation leaves free). Undefined when
   * the job may go anywhere (it ends by the reservation, or there is none). A placement searched within it
   * is allowed.
   */
  roomBeside?(job: PreparedJobWithCache, endMs: number): ((node: NodeRuntime) => number) | undefined;
}

/**
 * The head job's reservation computed from scratch on the cluster as it is (the oracle EasyShadow's
 * incremental answers are tested against), or null when it cannot start even after every running job with
 * a walltime has ended. Leaves the cluster as it found it.
 *
 * `ends` must come in end order (earliest first; jobs without a walltime, at Infinity, last). The shortest
 * prefix after which the head fits is found by doubling then bisecting, releasing and restoring jobs
 * incrementally between probes.
 */
export function easyReservation(cluster: ClusterState, head: PreparedJobWithCache, policy: Policy, ends: Iterable<ExpectedEnd>, nowMs: number): Reservation | null {
  const { prefix, readUpTo } = finitePrefix(ends);
  const rotation = cluster.rotation;
  const released: (Placement | undefined)[] = [];
  /** Puts the cluster in the state where exactly the first `k` jobs of `ends` have ended. */
  const endFirst = (k: number) => {
    while (released.length < k) released.push(cluster.release(prefix[released.length].jobId));
    while (released.length > k) {
      const p = released.pop();
      if (p) cluster.restore(p);
    }
  };
  /** Where the head fits, for each prefix length probed that it fits after. */
  const placementAfter = new Map<number, Placement>();
  const fitsAfter = (k: number) => {
    endFirst(k);
    const result = placeJob(cluster, head, policy, QUIET);
    if (result.ok) placementAfter.set(k, result.placement);
    return result.ok;
  };
  try {
    let lo = 0; // the head does not fit after `lo` ends (0 is "now": the caller found it does not fit)
    let hi = readUpTo(1);
    if (hi === 0) return null;
    while (!fitsAfter(hi)) {
      const more = readUpTo(hi * 2);
      if (more === hi) return null;
      lo = hi;
      hi = more;
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fitsAfter(mid)) hi = mid;
      else lo = mid;
    }
    return { jobId: head.job.id, startMs: Math.max(nowMs, prefix[hi - 1].endMs), boundary: prefix[hi - 1], headPlacement: placementAfter.get(hi)! };
  } finally {
    endFirst(0);
    cluster.rotation = rotation;
  }
}

/**
 * Reads end-ordered ends lazily into `prefix`: `readUpTo(k)` reads up to `k` of them (fewer when they run
 * out or reach jobs without a walltime) and returns how many there are.
 */
export function finitePrefix(ends: Iterable<ExpectedEnd>): { prefix: ExpectedEnd[]; readUpTo(k: number): number } {
  const source = ends[Symbol.iterator]();
  const prefix: ExpectedEnd[] = [];
  const readUpTo = (k: number) => {
    while (prefix.length < k) {
      const next = source.next();
      if (next.done || !Number.isFinite(next.value.endMs)) break;
      prefix.push(next.value);
    }
    return Math.min(k, prefix.length);
  };
  return { prefix, readUpTo };
}

/** Orders expected ends for easyReservation: earliest first, ties by job id, no walltime (Infinity) last. */
export function byEndTime(a: ExpectedEnd, b: ExpectedEnd): number {
  return a.endMs - b.endMs || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
}

/**
 * Whether a job may start now on `placement`, ending by `endMs`, without delaying `reservation`, computed
 * from scratch (the oracle of EasyShadow.allowed): it ends by the reservation (no later than its boundary
 * in end order), or it fits on a copy of the cluster as it will be then — the jobs up to the boundary
 * ended, the head on its planned placement. `ends` are the running jobs' expected ends.
 */
export function backfillAllowed(cluster: ClusterState, reservation: Reservation, ends: Iterable<ExpectedEnd>, placement: Placement, endMs: number): boolean {
  if (byEndTime({ jobId: placement.jobId, endMs }, reservation.boundary) <= 0) return true;
  const then = cluster.clone();
  for (const e of ends) if (byEndTime(e, reservation.boundary) <= 0) then.release(e.jobId);
  if (!then.fits(reservation.headPlacement)) return false;
  then.reserve(reservation.headPlacement);
  return then.fits(placement);
}
