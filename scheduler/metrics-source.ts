import { FairShare } from '../src/core';
import { POOLS, type Pool } from '../src/protocol';
import { capKwAt } from '../src/metering/power';
import type { MetricsSource } from '../src/telemetry/metrics';
import type { Scheduler } from './service';

/**
 * The scheduler's state as the metrics see it at scrape time (O(nodes + running jobs + tenants)). A pool's
 * state is reported by its leader only: every replica holds it, and dashboards sum over every replica
 * Prometheus scrapes, which would count it more than once.
 */
export function schedulerMetricsSource(s: Scheduler): MetricsSource {
  const source = clusterStateSource(s);
  return {
    ...source,
    pools: () => source.pools().filter((p) => s.leadership.leads(p.pool)),
    pending: () => source.pending().filter((p) => s.leadership.leads(p.pool)),
    nodes: () => source.nodes().filter((n) => s.leadership.leads(n.pool)),
    tenants: () => source.tenants().filter((t) => s.leadership.leads(t.pool)),
  };
}

function clusterStateSource(s: Scheduler): MetricsSource {
  return {
    ready: () => s.ready,
    leadership: () => POOLS.map((pool) => ({ pool, leading: s.leadership.leads(pool), term: s.leadership.termOf(pool) ?? 0 })),
    pools() {
      const running: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
      for (const jobId of s.store.cluster.placedJobIds()) running[s.store.cluster.placementOf(jobId)!.pool]++;
      const power = s.registry?.poolPower();
      return POOLS.map((pool) => {
        const summary = s.store.cluster.poolSummary(pool);
        const cap = s.config.powerBudgetsKw[pool];
        const budgetKw = cap === undefined ? undefined : capKwAt(cap, s.clock.now());
        return { pool, nodes: summary.nodes, allocatable: summary.allocatable, allocated: summary.allocated, running: running[pool], powerWatts: power?.[pool].watts ?? 0, powerBudgetWatts: budgetKw === undefined ? undefined : budgetKw * 1000 };
      });
    },
    pending() {
      const counts = new Map<string, { pool: Pool; priorityClass: string; count: number }>();
      for (const job of s.store.table.jobs.values()) {
        if (job.state !== 'pending') continue;
        const key = `${job.spec.pool}/${job.spec.priorityClass}`;
        const c = counts.get(key) ?? { pool: job.spec.pool, priorityClass: job.spec.priorityClass, count: 0 };
        c.count++;
        counts.set(key, c);
      }
      // Every pool and class appears, with 0 when nothing waits: a gap is not the same as an empty queue.
      for (const pool of POOLS) for (const priorityClass of Object.keys(s.config.priorityClasses)) if (!counts.has(`${pool}/${priorityClass}`)) counts.set(`${pool}/${priorityClass}`, { pool, priorityClass, count: 0 });
      return [...counts.values()];
    },
    nodes() {
      return [...(s.registry?.entries.values() ?? [])].map((entry) => {
        const node = s.store.cluster.getNode(entry.id);
        const hb = entry.lastHeartbeat;
        const gpuUtil = hb && hb.gpus.length > 0 ? hb.gpus.reduce((sum, g) => sum + g.util, 0) / hb.gpus.length : 0;
        return {
          id: entry.id,
          pool: entry.spec.pool,
          state: s.registry.stateOf(entry),
          cpuUtil: hb?.cpuUtil ?? 0,
          memUsedBytes: hb?.memUsedBytes ?? 0,
          gpuUtil,
          gpusAllocated: (node?.usedGpuMilli() ?? 0) / 1000,
          tasks: node?.taskCount ?? 0,
          powerWatts: hb?.powerWatts ?? 0,
          greenShare: hb?.greenShare ?? 0,
        };
      });
    },
    tenants() {
      const fair = new FairShare(s.store.cluster, { weightOf: (t) => s.tenants.weightOf(t), agingMs: s.config.agingMs });
      return s.tenants.list().flatMap((t) =>
        POOLS.map((pool) => {
          const used = s.store.cluster.usageOf(t.name, pool);
          const quota = s.tenants.quotaOf(t.name, pool);
          return {
            tenant: t.name,
            pool,
            cpuMillis: used.cpuMillis,
            gpuMilli: used.gpuMilli,
            running: used.jobs,
            pending: s.store.pending.sizeOfTenant(t.name, pool),
            dominantShare: fair.dominantShare(t.name, pool),
            quotaCpuMillis: quota.cpuMillis,
            quotaGpus: quota.gpus,
          };
        }),
      );
    },
    carbonIntensity: () => s.config.carbonIntensityGPerKwh,
  };
}
