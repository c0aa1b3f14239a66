import { runSecondsOf } from '../../src/federation';
import { POOLS, type PoolSummary, type SiteSummary } from '../../src/protocol';
import type { JobStateView } from '../job-store';
import type { NodeRegistry } from '../nodes';

/**
 * What this site tells the others of itself: per pool, its nodes, capacity, largest node, what is allocated
 * and what waits. One walk over the jobs in memory (live jobs only: finished ones leave with retention).
 */
export function siteSummaryOf(site: string, store: JobStateView, registry: Pick<NodeRegistry, 'poolPower'>, nowMs: number): SiteSummary {
  const pools: SiteSummary['pools'] = {};
  const runSeconds = { general: [0, 0], intelligent: [0, 0], super: [0, 0] };
  const pending = { general: [0, 0, 0], intelligent: [0, 0, 0], super: [0, 0, 0] };
  for (const job of store.table.jobs.values()) {
    if (job.state !== 'pending' && job.state !== 'placed' && job.state !== 'running') continue;
    const pool = job.spec.pool;
    runSeconds[pool][0] += runSecondsOf({ ...job.spec, resources: job.spec.resources });
    runSeconds[pool][1]++;
    if (job.state === 'pending') {
      const r = job.spec.resources;
      pending[pool][0]++;
      pending[pool][1] += job.spec.tasks * r.cpuMillis;
      pending[pool][2] += job.spec.tasks * (r.gpus * 1000 + r.gpuMilli);
    }
  }
  for (const pool of POOLS) {
    const nodes = store.cluster.nodesOf(pool).filter((n) => n.state === 'ready');
    if (nodes.length === 0) continue;
    const s = store.cluster.poolSummary(pool);
    const largest = { cpuMillis: 0, memBytes: 0, gpus: 0 };
    for (const n of nodes) {
      largest.cpuMillis = Math.max(largest.cpuMillis, n.allocatable.cpuMillis);
      largest.memBytes = Math.max(largest.memBytes, n.allocatable.memBytes);
      largest.gpus = Math.max(largest.gpus, n.allocatable.gpus);
    }
    const [runTotal, runCount] = runSeconds[pool];
    const summary: PoolSummary = {
      nodes: nodes.length,
      capacity: { cpuMillis: s.allocatable.cpuMillis, memBytes: s.allocatable.memBytes, gpus: s.allocatable.gpus },
      largestNode: largest,
      allocated: s.allocated,
      pendingJobs: pending[pool][0],
      pendingCpuMillis: pending[pool][1],
      pendingGpuMilli: pending[pool][2],
      meanRunSeconds: runCount > 0 ? runTotal / runCount : 0,
    };
    pools[pool] = summary;
  }
  const power = registry.poolPower();
  const watts = POOLS.reduce((sum, p) => sum + power[p].watts, 0);
  const greenWatts = POOLS.reduce((sum, p) => sum + power[p].greenWatts, 0);
  return { type: 'summary', site, atMs: nowMs, greenShare: watts > 0 ? greenWatts / watts : undefined, pools };
}
