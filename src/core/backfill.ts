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
 * running jobs have ended (by their walltimes) for it to fit, and the cluster as it will be then. Jobs that
 * start now and run past that time are reserved in `future` too, so each later candidate is checked against
 * what the earlier ones took.
 */
export interface Reservation {
  jobId: string;
  startMs: number;
  future: ClusterState;
}

/**
 * The head job's reservation, or null when it cannot start even after every running job with a walltime
 * has ended (then backfilling has nothing to protect). Pure: works on a copy of the cluster.
 */
export function easyReservation(cluster: ClusterState, head: PreparedJobWithCache, policy: Policy, ends: readonly ExpectedEnd[], nowMs: number): Reservation | null {
  const future = cluster.clone();
  const sorted = [...ends].sort((a, b) => a.endMs - b.endMs || (a.jobId < b.jobId ? -1 : 1));
  for (const end of sorted) {
    if (!Number.isFinite(end.endMs)) break;
    future.release(end.jobId);
    if (placeJob(future, head, policy).ok) return { jobId: head.job.id, startMs: Math.max(nowMs, end.endMs), future };
  }
  return null;
}

/**
 * Whether a job may start now on `placement` without delaying the reservation: it ends before the
 * reservation starts, or the head still fits at the reservation time with this job still running. An
 * allowed job that runs past the reservation is recorded in the reservation's future cluster.
 */
export function backfillAllowed(reservation: Reservation, head: PreparedJobWithCache, policy: Policy, placement: Placement, endMs: number): boolean {
  if (endMs <= reservation.startMs) return true;
  const future = reservation.future;
  try {
    future.reserve(placement);
  } catch {
    return false;
  }
  if (placeJob(future, head, policy).ok) return true;
  future.release(placement.jobId);
  return false;
}
