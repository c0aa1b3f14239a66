import type { FilterVerdict, Policy, PreparedJob, PoolPolicy } from './framework';
import type { SchedJob } from './model';
import type { NodeGroup } from './node-group';
import type { NodeRuntime, PreparedTask } from './node-runtime';
import { STATIC_FILTERS } from './filters';
import { forDeferrable } from './policy';
import { SCORE_PLUGINS } from './scores';

/** A prepared job plus a cache of static verdicts per node group (valid for one groupsVersion). */
export interface PreparedJobWithCache extends PreparedJob {
  staticCache: { version: number; verdicts: Map<NodeGroup, FilterVerdict> };
}

/**
 * Does the work that depends only on the job, once: resources as numbers, accepted GPU models as a set,
 * the pool's weighted score plugins. Prepare a job once and place it as often as it stays pending.
 */
export function prepareJob(job: SchedJob, policy: Policy): PreparedJobWithCache {
  const poolPolicy: PoolPolicy = job.deferrable ? forDeferrable(policy[job.pool]) : policy[job.pool];
  const r = job.task;
  const task: PreparedTask = {
    cpuMillis: r.cpuMillis,
    memBytes: r.memBytes,
    gpus: r.gpus,
    gpuMilli: r.gpuMilli,
    gpuMemBytes: r.gpuMemBytes,
    extended: Object.entries(r.extended).filter(([, amount]) => amount > 0),
    exclusive: job.exclusive || poolPolicy.exclusive,
  };
  return {
    job,
    task,
    gpuModels: job.constraints.gpuModels.length > 0 ? new Set(job.constraints.gpuModels) : null,
    policy: poolPolicy,
    scorers: scorersOf(poolPolicy),
    staticCache: { version: -1, verdicts: new Map() },
  };
}

type Scorers = PreparedJob['scorers'];
const scorersByPolicy = new WeakMap<PoolPolicy, Scorers>();

/** The weighted score plugins of a pool policy, resolved once per policy object. */
function scorersOf(policy: PoolPolicy): Scorers {
  let scorers = scorersByPolicy.get(policy);
  if (!scorers) {
    scorers = Object.entries(policy.scoreWeights)
      .filter(([, weight]) => weight > 0)
      .map(([name, weight]) => {
        const plugin = SCORE_PLUGINS[name];
        if (!plugin) throw new Error(`unknown score plugin ${name}`);
        return { plugin, weight };
      });
    scorersByPolicy.set(policy, scorers);
  }
  return scorers;
}

/** Runs the static filters on one node; the first rejection names the reason. */
export function staticVerdictForNode(p: PreparedJob, node: NodeRuntime): FilterVerdict {
  for (const f of STATIC_FILTERS) {
    const verdict = f.filter(p, node);
    if (verdict !== null) return verdict;
  }
  return null;
}

/** The static verdict of a whole group, computed once per job and group. */
export function staticVerdictForGroup(p: PreparedJobWithCache, group: NodeGroup, groupsVersion: number): FilterVerdict {
  const cache = p.staticCache;
  if (cache.version !== groupsVersion) {
    cache.version = groupsVersion;
    cache.verdicts.clear();
  }
  let verdict = cache.verdicts.get(group);
  if (verdict === undefined) {
    verdict = staticVerdictForNode(p, group.representative);
    cache.verdicts.set(group, verdict);
  }
  return verdict;
}

/**
 * The dynamic verdict on a candidate from the index, in the order of the dynamic filters: free resources
 * first, then tenant isolation for restricted data.
 */
export function dynamicVerdict(p: PreparedJob, node: NodeRuntime): FilterVerdict {
  return node.shortfall(p.task) ?? (node.isolationBlocks(p.job.tenant, p.job.dataClass === 'restricted') ? 'restricted-isolation' : null);
}

/** How many tasks fit on a node of this shape when it is empty (0 when one does not). */
export function tasksOnEmptyNode(task: PreparedTask, node: NodeRuntime, max: number): number {
  const alloc = node.allocatable;
  if (task.cpuMillis > alloc.cpuMillis || task.memBytes > alloc.memBytes) return 0;
  if (task.exclusive) return Math.min(1, max);
  let n = Math.min(max, Math.floor(alloc.cpuMillis / task.cpuMillis));
  if (task.memBytes > 0) n = Math.min(n, Math.floor(alloc.memBytes / task.memBytes));
  if (task.gpus > 0) n = Math.min(n, Math.floor(alloc.gpus / task.gpus));
  else if (task.gpuMilli > 0) n = Math.min(n, alloc.gpus * Math.floor(1000 / task.gpuMilli));
  for (const [name, amount] of task.extended) n = Math.min(n, Math.floor((alloc.extended[name] ?? 0) / amount));
  return Math.max(0, n);
}
