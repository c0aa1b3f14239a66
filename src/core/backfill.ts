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
  /**
   * Nodes the head would take at `startMs`, as last found. A job placed on none of them cannot delay the
   * head; backfillAllowed updates them when it finds the head a new place.
   */
  headNodes: Set<string>;
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
    for (let i = released.length - 1; i >= 0; i--) cluster.restore(released[i]);
    cluster.rotation = rotation;
  }
}

/**
 * The head job's reservation, or null when it cannot start even after every running job with a walltime
 * has ended (then backfilling has nothing to protect). Leaves the cluster as it found it.
 *
 * `ends` must come in end order (earliest first; jobs without a walltime, at Infinity, last): the caller
 * keeps them sorted, so a cycle does not sort every running job again, and only the prefix needed is read.
 * The shortest prefix after which the head fits is found by doubling then bisecting, releasing and
 * restoring jobs incrementally between probes: O(log k) placement attempts and O(k) releases, where k is
 * how many jobs must end first.
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
  const headNodesAfter = new Map<number, Set<string>>();
  const fitsAfter = (k: number) => {
    endFirst(k);
    const result = placeJob(cluster, head, policy);
    if (result.ok) headNodesAfter.set(k, nodesOf(result.placement));
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
    return { jobId: head.job.id, startMs: Math.max(nowMs, prefix[hi - 1].endMs), endedBefore: prefix.slice(0, hi).map((e) => e.jobId), headNodes: headNodesAfter.get(hi)! };
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
 * Whether a job may start now on `placement` without delaying the reservation: it ends before the
 * reservation starts, or it takes none of the nodes the head is to start on, or the head still fits at
 * the reservation time with this job (and every job already started, including earlier backfills) still
 * running — in which case the head's nodes in `reservation` are updated to where it now fits. Leaves the
 * cluster as it found it.
 */
export function backfillAllowed(cluster: ClusterState, reservation: Reservation, head: PreparedJobWithCache, policy: Policy, placement: Placement, endMs: number): boolean {
  if (endMs <= reservation.startMs) return true;
  if (!placement.tasks.some((t) => reservation.headNodes.has(t.nodeId))) return true;
  const rotation = cluster.rotation;
  try {
    cluster.reserve(placement);
  } catch {
    return false;
  }
  try {
    const result = withEnded(cluster, reservation.endedBefore, () => placeJob(cluster, head, policy));
    if (result.ok) reservation.headNodes = nodesOf(result.placement);
    return result.ok;
  } finally {
    cluster.release(placement.jobId);
    cluster.rotation = rotation;
  }
}

function nodesOf(placement: Placement): Set<string> {
  return new Set(placement.tasks.map((t) => t.nodeId));
}
