import type { ClusterState } from './cluster';
import type { Policy } from './framework';
import type { Placement, TaskPlacement } from './model';
import { placeJob, toPlacement } from './placement';

/** Look-ahead only asks whether a job fits. */
const QUIET = { explain: false };
import { dynamicVerdict, staticVerdictForGroup, type PreparedJobWithCache } from './prepare';

/** What preemption needs to know of a job that holds a placement. */
export interface VictimInfo {
  priority: number;
  /** When it started (newer jobs lose less work when stopped, so they go first). */
  startedAtMs: number;
  /** False when it may not be preempted now (the storm guard, or it is already stopping). */
  preemptible: boolean;
}

/** Jobs to stop so that a job fits, and where it would then go. */
export interface PreemptionPlan {
  victims: string[];
  placement: Placement;
}

/** Nodes examined per decision for a single-task job: those with the fewest lower-priority jobs first. */
const MAX_NODES = 256;
/** Lower-priority jobs released at most while looking for room for a gang. */
const MAX_GANG_VICTIMS = 2_000;

/**
 * Finds the fewest and lowest-priority jobs to stop so that `p` fits, never one of the same or a higher
 * priority. A single task looks node by node: on each node it releases lower jobs lowest first (newest
 * first among equals) until the task fits, then gives back ("reprieves") those not needed, and the node
 * with the fewest victims (then the lowest highest victim priority, then the lowest sum, then the most
 * recently started) wins. A gang
 * releases across the pool in the same order until it fits, then reprieves. The cluster is changed while
 * looking and restored exactly before returning.
 */
export function findPreemption(cluster: ClusterState, p: PreparedJobWithCache, policy: Policy, info: (jobId: string) => VictimInfo | undefined): PreemptionPlan | null {
  const priority = p.job.priority;
  const lower = new Map<string, VictimInfo>();
  for (const jobId of cluster.placedJobIds()) {
    const placement = cluster.placementOf(jobId)!;
    if (placement.pool !== p.job.pool) continue;
    const v = info(jobId);
    if (v && v.preemptible && v.priority < priority) lower.set(jobId, v);
  }
  if (lower.size === 0) return null;
  const order = (a: string, b: string) => lower.get(a)!.priority - lower.get(b)!.priority || lower.get(b)!.startedAtMs - lower.get(a)!.startedAtMs || (a < b ? -1 : 1);
  const rotation = cluster.rotation;
  try {
    return p.job.tasks === 1 ? onOneNode(cluster, p, lower, order) : acrossPool(cluster, p, policy, [...lower.keys()].sort(order).slice(0, MAX_GANG_VICTIMS));
  } finally {
    cluster.rotation = rotation;
  }
}

function onOneNode(cluster: ClusterState, p: PreparedJobWithCache, lower: Map<string, VictimInfo>, order: (a: string, b: string) => number): PreemptionPlan | null {
  const candidates: { nodeId: string; victims: string[] }[] = [];
  for (const group of cluster.groupsOf(p.job.pool)) {
    if (group.stateCounts.ready === 0 || staticVerdictForGroup(p, group, cluster.groupsVersion) !== null) continue;
    for (const node of group.members) {
      if (!node || node.state !== 'ready') continue;
      const victims = cluster.jobsOn(node.id).filter((id) => lower.has(id));
      if (victims.length > 0) candidates.push({ nodeId: node.id, victims: victims.sort(order) });
    }
  }
  candidates.sort((a, b) => a.victims.length - b.victims.length || (a.nodeId < b.nodeId ? -1 : 1));
  let best: { victims: string[]; placement: Placement; score: Score; nodeId: string } | null = null;
  for (const { nodeId, victims } of candidates.slice(0, MAX_NODES)) {
    const node = cluster.getNode(nodeId)!;
    const fits = () => dynamicVerdict(p, node) === null;
    const released: Placement[] = [];
    try {
      for (const id of victims) {
        released.push(cluster.release(id)!);
        if (fits()) break;
      }
      if (!fits()) continue;
      // Reprieve: give back, highest first, every victim the task can do without.
      const needed: string[] = [];
      for (let i = released.length - 1; i >= 0; i--) {
        cluster.reserve(released[i]);
        if (fits()) continue;
        cluster.release(released[i].jobId);
        needed.push(released[i].jobId);
      }
      // Fewest victims, then the lowest, then the least work lost (the most recently started).
      const score: Score = [
        needed.length,
        Math.max(...needed.map((id) => lower.get(id)!.priority)),
        needed.reduce((s, id) => s + lower.get(id)!.priority, 0),
        -needed.reduce((s, id) => s + lower.get(id)!.startedAtMs, 0),
      ];
      if (!best || compareScore(score, best.score) < 0 || (compareScore(score, best.score) === 0 && nodeId < best.nodeId)) {
        const out: TaskPlacement[] = [];
        node.planTasks(p.task, 1, 0, out);
        best = { victims: needed, placement: toPlacement(p.job, p.task.exclusive, out), score, nodeId };
      }
    } finally {
      for (const placement of released) if (!cluster.placementOf(placement.jobId)) cluster.reserve(placement);
    }
  }
  return best ? { victims: best.victims, placement: best.placement } : null;
}

function acrossPool(cluster: ClusterState, p: PreparedJobWithCache, policy: Policy, ordered: string[]): PreemptionPlan | null {
  const released: Placement[] = [];
  try {
    let fitted = false;
    for (const id of ordered) {
      released.push(cluster.release(id)!);
      if (placeJob(cluster, p, policy, QUIET).ok) {
        fitted = true;
        break;
      }
    }
    if (!fitted) return null;
    const needed: string[] = [];
    for (let i = released.length - 1; i >= 0; i--) {
      cluster.reserve(released[i]);
      if (placeJob(cluster, p, policy, QUIET).ok) continue;
      cluster.release(released[i].jobId);
      needed.push(released[i].jobId);
    }
    const result = placeJob(cluster, p, policy, QUIET);
    return result.ok ? { victims: needed, placement: result.placement } : null;
  } finally {
    for (const placement of released) if (!cluster.placementOf(placement.jobId)) cluster.reserve(placement);
  }
}

type Score = [victims: number, highestPriority: number, prioritySum: number, minusStartSum: number];

function compareScore(a: Score, b: Score): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3] - b[3];
}
