import { GPU_MILLI_PER_GPU } from '../protocol';
import type { ClusterState } from './cluster';
import type { FilterVerdict, Policy } from './framework';
import { GangTally } from './gang';
import type { Placement, PlacementFailure, PlacementResult, ReasonCounts, SchedJob, TaskPlacement } from './model';
import { CONTINUE, NEXT_GROUP, STOP, type NodeGroup, type SlotNeeds } from './node-group';
import type { NodeRuntime } from './node-runtime';
import { dynamicVerdict, prepareJob, staticVerdictForGroup, tasksOnEmptyNode, type PreparedJobWithCache } from './prepare';
import { addReason } from './reasons';
import { selectBest } from './select';

/**
 * Places one job on the cluster without changing it: filter → score → select, all or nothing for gangs.
 * The caller commits the result with `cluster.reserve(result.placement)`.
 *
 * Candidates come from the node groups' free-capacity indexes, never from a scan of every node: static
 * filters run once per group, the index offers only nodes that can hold a task, and at most
 * `nodesToScore` feasible nodes per group are scored. A failure is exhaustive, so the indexed path and a
 * full scan agree on whether a job fits; only then are the reasons counted for every node.
 */
export function placeJob(cluster: ClusterState, job: SchedJob | PreparedJobWithCache, policy: Policy, options: PlaceOptions = {}): PlacementResult {
  const p = 'staticCache' in job ? job : prepareJob(job, policy);
  // Not enough free in the whole pool: no search can succeed (a caller who wants the reasons gets them from the search).
  if (options.explain === false && !cluster.mayHold(p.job.pool, demandOf(p.job))) return unexplained(p, 0, undefined);
  const passing = passingGroups(cluster, p);
  const room = options.room;
  const visitReasons: ReasonCounts = {};
  const spread = p.policy.candidateOrder === 'spread';
  let evaluated = 0;

  if (p.job.tasks === 1) {
    const sample: NodeRuntime[] = [];
    // The scoring budget is shared by the groups, so more groups do not mean more scoring.
    const perGroup = Math.ceil(p.policy.nodesToScore / Math.max(1, passing.length));
    for (const { group, needs } of passing) {
      let taken = 0;
      group.forEachCandidate(needs, spread, cluster.rotation, (node) => {
        evaluated++;
        const reason = dynamicVerdict(p, node);
        if (reason !== null) {
          addReason(visitReasons, reason);
          return CONTINUE;
        }
        if (room && room(node) === 0) return CONTINUE;
        sample.push(node);
        return ++taken >= perGroup ? NEXT_GROUP : CONTINUE;
      });
    }
    if (sample.length > 0) {
      const out: TaskPlacement[] = [];
      selectBest(p, sample).planTasks(p.task, 1, 0, out);
      return { ok: true, placement: toPlacement(p.job, p.task.exclusive, out), nodesEvaluated: evaluated };
    }
    return options.explain === false ? unexplained(p, evaluated, undefined) : indexedFailure(cluster, p, passing, visitReasons, evaluated, undefined);
  }

  const tally = new GangTally(p.job.tasks, p.policy.gangSearchNodes);
  for (const { group, needs } of passing) {
    const verdict = group.forEachCandidate(needs, spread, cluster.rotation, (node) => {
      evaluated++;
      const blocked = dynamicVerdict(p, node);
      let count = blocked === null ? node.fitCount(p.task, p.job.tasks) : 0;
      if (room && count > 0) count = Math.min(count, room(node));
      if (count === 0) {
        addReason(visitReasons, blocked ?? 'insufficient-cpu');
        return CONTINUE;
      }
      return tally.add(node, count) ? STOP : CONTINUE;
    });
    if (verdict === STOP) break;
  }
  const tasks = tally.assign(p.task);
  if (tasks) {
    const placement = toPlacement(p.job, p.task.exclusive, tasks);
    cluster.adoptPlan(placement, tally.plannedNodes, tally.plannedCounts);
    return { ok: true, placement, nodesEvaluated: evaluated };
  }
  if (options.explain === false) return unexplained(p, evaluated, tally.totalCapacity);
  addReason(visitReasons, 'gang-too-large', tally.nodesWithRoom);
  return indexedFailure(cluster, p, passing, visitReasons, evaluated, tally.totalCapacity);
}

/**
 * Whether placeJob would find a placement now (the same answer), without choosing nodes or building task
 * placements: the search stops at the first node that holds a single task, or once the nodes seen hold the
 * whole gang. Look-ahead probes ask this many times before they need one placement (EASY's head).
 */
export function jobFits(cluster: ClusterState, p: PreparedJobWithCache): boolean {
  if (!cluster.mayHold(p.job.pool, demandOf(p.job))) return false;
  const spread = p.policy.candidateOrder === 'spread';
  const single = p.job.tasks === 1;
  let room = 0;
  for (const { group, needs } of passingGroups(cluster, p)) {
    const verdict = group.forEachCandidate(needs, spread, cluster.rotation, (node) => {
      if (dynamicVerdict(p, node) !== null) return CONTINUE;
      if (single) return STOP;
      room += node.fitCount(p.task, p.job.tasks);
      return room >= p.job.tasks ? STOP : CONTINUE;
    });
    if (verdict === STOP) return true;
  }
  return false;
}

/** The pool's groups with ready nodes that pass the job's static filters, and what a task needs in each. */
function passingGroups(cluster: ClusterState, p: PreparedJobWithCache): { group: NodeGroup; needs: SlotNeeds }[] {
  const passing: { group: NodeGroup; needs: SlotNeeds }[] = [];
  for (const group of cluster.groupsOf(p.job.pool)) {
    if (group.indexedCount > 0 && staticVerdictForGroup(p, group, cluster.groupsVersion) === null) {
      passing.push({ group, needs: group.needsFor(p.task) });
    }
  }
  return passing;
}

/** What a whole job asks of its pool. */
export function demandOf(job: SchedJob): { cpuMillis: number; memBytes: number; gpuMilli: number } {
  const { task, tasks } = job;
  return { cpuMillis: tasks * task.cpuMillis, memBytes: tasks * task.memBytes, gpuMilli: tasks * (task.gpus * GPU_MILLI_PER_GPU + task.gpuMilli) };
}

/** How placeJob works. */
export interface PlaceOptions {
  /**
   * Count a reason for every node of the pool when the job does not fit (the default). Look-ahead callers
   * that only need to know whether it fits (EASY, preemption, the simulator) skip it: it costs a visit of
   * every node.
   */
  explain?: boolean;
  /**
   * At most how many of the job's tasks a node may take (EASY backfilling: what fits beside the head's
   * reservation). Nodes it allows none are passed over as if full.
   */
  room?: (node: NodeRuntime) => number;
}

/** A failure without reasons (see PlaceOptions.explain); `never` is not decided either. */
function unexplained(p: PreparedJobWithCache, evaluated: number, tasksFitting: number | undefined): PlacementFailure {
  return { ok: false, never: false, totalNodes: 0, reasons: {}, tasks: p.job.tasks, tasksFitting, gpuModels: p.job.constraints.gpuModels, nodesEvaluated: evaluated };
}

/** Builds the placement record of a job from its task placements. */
export function toPlacement(job: SchedJob, exclusive: boolean, tasks: TaskPlacement[]): Placement {
  return { jobId: job.id, tenant: job.tenant, pool: job.pool, dataClass: job.dataClass, exclusive, tasks };
}

/**
 * Counts a reason for every node of the pool after a failed search: lifecycle state, the group's static
 * verdict, the index level that kept a node from being offered, or the exact check of a node that was.
 */
function indexedFailure(
  cluster: ClusterState,
  p: PreparedJobWithCache,
  passing: { group: NodeGroup; needs: SlotNeeds }[],
  visitReasons: ReasonCounts,
  evaluated: number,
  tasksFitting: number | undefined,
): PlacementFailure {
  const never = neverFits(cluster, p);
  if (never) return never;
  const reasons: ReasonCounts = { ...visitReasons };
  const add = (code: Parameters<typeof addReason>[1], count: number) => addReason(reasons, code, count);
  let totalNodes = 0;
  for (const group of cluster.groupsOf(p.job.pool)) {
    totalNodes += group.size;
    add('node-cordoned', group.stateCounts.cordoned);
    add('node-suspect', group.stateCounts.suspect);
    add('node-down', group.stateCounts.down);
    if (group.indexedCount === 0) continue;
    const verdict = staticVerdictForGroup(p, group, cluster.groupsVersion);
    if (verdict !== null) add(verdict, group.indexedCount);
  }
  for (const { group, needs } of passing) {
    group.explainNonCandidates(needs, add, (node) => add(dynamicVerdict(p, node) ?? 'gang-too-large', 1));
  }
  return { ok: false, never: false, totalNodes, reasons, tasks: p.job.tasks, tasksFitting, gpuModels: p.job.constraints.gpuModels, nodesEvaluated: evaluated };
}

/**
 * Whether the job could not fit even if every registered node of its pool were ready and empty
 * (unknown GPU model, larger than any node, a gang larger than the pool). Such a job is rejected, not queued.
 */
export function neverFits(cluster: ClusterState, p: PreparedJobWithCache): PlacementFailure | null {
  const reasons: ReasonCounts = {};
  let capacity = 0;
  let totalNodes = 0;
  for (const group of cluster.groupsOf(p.job.pool)) {
    totalNodes += group.size;
    const verdict: FilterVerdict = staticVerdictForGroup(p, group, cluster.groupsVersion);
    if (verdict !== null) {
      addReason(reasons, verdict, group.size);
      continue;
    }
    const perNode = tasksOnEmptyNode(p.task, group.representative, p.job.tasks);
    if (perNode === 0) addReason(reasons, 'node-too-small', group.size);
    else {
      addReason(reasons, 'gang-too-large', group.size);
      capacity += perNode * group.size;
    }
    if (capacity >= p.job.tasks) return null;
  }
  return {
    ok: false,
    never: true,
    totalNodes,
    reasons,
    tasks: p.job.tasks,
    tasksFitting: p.job.tasks > 1 ? capacity : undefined,
    gpuModels: p.job.constraints.gpuModels,
    nodesEvaluated: 0,
  };
}
