import type { ClusterState } from './cluster';
import type { Policy } from './framework';
import type { Placement } from './model';
import { placeJob } from './placement';
import type { PreparedJobWithCache } from './prepare';

/** When a running job is expected to end: its start plus its walltime. */
export interface ExpectedEnd {
  jobId: string;
  endMs: number;
}

/**
 * EASY backfilling's reservation for the job at the head of a pool's queue: the earliest time enough
 * running jobs have ended (by their walltimes) for it to fit, and which jobs will have ended by then.
 */
export interface Reservation {
  jobId: string;
  startMs: number;
  /** Jobs expected to have ended by `startMs`, in end order. */
  endedBefore: string[];
}

/**
 * Runs `fn` on the cluster as it will be once `jobIds` have ended (released), then puts every released job
 * back exactly as it was. Looking ahead this way costs a release and a reserve per job that ends, instead
 * of a copy of the whole cluster.
 */
function withEnded<T>(cluster: ClusterState, jobIds: readonly string[], fn: () => T): T {
  const rotation = cluster.rotation;
  const released: Placement[] = [];
  try {
    for (const id of jobIds) {
      const p = cluster.release(id);
      if (p) released.push(p);
    }
    return fn();
  } finally {
    for (let i = released.length - 1; i >= 0; i--) cluster.reserve(released[i]);
    cluster.rotation = rotation;
  }
}

/**
 * The head job's reservation, or null when it cannot start even after every running job with a walltime
 * has ended (then backfilling has nothing to protect). Leaves the cluster as it found it.
 * Finds the shortest prefix of the end-ordered running jobs after which the head fits by doubling then
 * bisecting: O(log n) placement attempts.
 */
export function easyReservation(cluster: ClusterState, head: PreparedJobWithCache, policy: Policy, ends: readonly ExpectedEnd[], nowMs: number): Reservation | null {
  const sorted = ends.filter((e) => Number.isFinite(e.endMs)).sort((a, b) => a.endMs - b.endMs || (a.jobId < b.jobId ? -1 : 1));
  const ids = sorted.map((e) => e.jobId);
  const fitsAfter = (k: number) => withEnded(cluster, ids.slice(0, k), () => placeJob(cluster, head, policy).ok);
  if (sorted.length === 0 || !fitsAfter(sorted.length)) return null;
  let hi = 1;
  while (hi < sorted.length && !fitsAfter(hi)) hi *= 2;
  hi = Math.min(hi, sorted.length);
  let lo = Math.floor(hi / 2); // the head does not fit after `lo` ends (lo = 0 is "now", which failed)
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fitsAfter(mid)) hi = mid;
    else lo = mid;
  }
  return { jobId: head.job.id, startMs: Math.max(nowMs, sorted[hi - 1].endMs), endedBefore: ids.slice(0, hi) };
}

/**
 * Whether a job may start now on `placement` without delaying the reservation: it ends before the
 * reservation starts, or the head still fits at the reservation time with this job (and every job already
 * started, including earlier backfills) still running. Leaves the cluster as it found it.
 */
export function backfillAllowed(cluster: ClusterState, reservation: Reservation, head: PreparedJobWithCache, policy: Policy, placement: Placement, endMs: number): boolean {
  if (endMs <= reservation.startMs) return true;
  const rotation = cluster.rotation;
  try {
    cluster.reserve(placement);
  } catch {
    return false;
  }
  try {
    return withEnded(cluster, reservation.endedBefore, () => placeJob(cluster, head, policy).ok);
  } finally {
    cluster.release(placement.jobId);
    cluster.rotation = rotation;
  }
}
