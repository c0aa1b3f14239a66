import type { ClusterState } from './cluster';
import type { Policy } from './framework';
import { FILTERS } from './filters';
import { GangTally } from './gang';
import type { PlacementResult, ReasonCounts, SchedJob, TaskPlacement } from './model';
import type { NodeRuntime } from './node-runtime';
import { neverFits, toPlacement } from './placement';
import { prepareJob, type PreparedJobWithCache } from './prepare';
import { addReason } from './reasons';
import { selectBest } from './select';

/**
 * The baseline the index is measured and checked against: every filter on every node of the pool, every
 * feasible node scored. Same plugins, same selection rules, no index and no sampling. Used by the
 * placement benchmark and by the property test that both paths agree on which jobs fit.
 */
export function placeJobNaive(cluster: ClusterState, job: SchedJob | PreparedJobWithCache, policy: Policy): PlacementResult {
  const p = 'staticCache' in job ? job : prepareJob(job, policy);
  const reasons: ReasonCounts = {};
  const feasible: NodeRuntime[] = [];
  const nodes = cluster.nodesOf(p.job.pool);
  for (const node of nodes) {
    let reason = null;
    for (const f of FILTERS) {
      reason = f.filter(p, node);
      if (reason !== null) break;
    }
    if (reason !== null) addReason(reasons, reason);
    else feasible.push(node);
  }
  if (p.job.tasks === 1 && feasible.length > 0) {
    const out: TaskPlacement[] = [];
    selectBest(p, feasible).planTasks(p.task, 1, 0, out);
    return { ok: true, placement: toPlacement(p.job, p.task.exclusive, out), nodesEvaluated: nodes.length };
  }
  let tasksFitting: number | undefined;
  if (p.job.tasks > 1) {
    const tally = new GangTally(p.job.tasks);
    for (const node of feasible) if (tally.add(node, node.fitCount(p.task, p.job.tasks))) break;
    const tasks = tally.assign(p.task);
    if (tasks) return { ok: true, placement: toPlacement(p.job, p.task.exclusive, tasks), nodesEvaluated: nodes.length };
    addReason(reasons, 'gang-too-large', feasible.length);
    tasksFitting = tally.totalCapacity;
  }
  const never = neverFits(cluster, p);
  if (never) return never;
  return { ok: false, never: false, totalNodes: nodes.length, reasons, tasks: p.job.tasks, tasksFitting, gpuModels: p.job.constraints.gpuModels, nodesEvaluated: nodes.length };
}
