import type { Pool } from '../protocol';
import type { ClusterState } from './cluster';
import type { SchedJob } from './model';
import type { JobComparator } from './queue';

/** Fair-share settings: tenant weights and how fast waiting raises a job within its class. */
export interface FairShareSettings {
  /** Weight of a tenant (1 when unknown): a tenant of weight 2 is entitled to twice the share of one of weight 1. */
  weightOf(tenant: string): number;
  /** Waiting this long is worth a whole dominant share: the aging that keeps any job from starving. */
  agingMs: number;
}

/**
 * Weighted dominant resource fairness (Ghodsi et al., NSDI 2011) per pool. A tenant's dominant share in a
 * pool is its largest share of any resource (CPU, memory, GPUs) of the pool; divided by its weight it
 * orders tenants within a priority class, smallest first. Aging subtracts the time a job has waited, in
 * units of `agingMs`, so a job that waits long enough goes first within its class whatever its tenant holds.
 */
export class FairShare {
  /** Weighted shares by pool and tenant, valid for one usageVersion of the cluster (a cycle compares heads often). */
  private cache = new Map<Pool, Map<string, number>>();
  private cacheVersion = -1;

  constructor(
    private readonly cluster: ClusterState,
    private readonly settings: FairShareSettings,
  ) {}

  /** The tenant's largest share of any resource of the pool, 0..1. */
  dominantShare(tenant: string, pool: Pool): number {
    const use = this.cluster.usageOf(tenant, pool);
    const cap = this.cluster.capacityOf(pool);
    return Math.max(ratio(use.cpuMillis, cap.cpuMillis), ratio(use.memBytes, cap.memBytes), ratio(use.gpuMilli, cap.gpuMilli));
  }

  /** Dominant share divided by weight: what fair share compares. */
  weightedShare(tenant: string, pool: Pool): number {
    return this.dominantShare(tenant, pool) / Math.max(1e-9, this.settings.weightOf(tenant));
  }

  /** The job's place within its priority class at `nowMs`: smaller goes first. */
  key(job: SchedJob, nowMs: number): number {
    return this.cachedShare(job.tenant, job.pool) - Math.max(0, nowMs - job.submittedAtMs) / this.settings.agingMs;
  }

  private cachedShare(tenant: string, pool: Pool): number {
    if (this.cacheVersion !== this.cluster.usageVersion) {
      this.cache = new Map();
      this.cacheVersion = this.cluster.usageVersion;
    }
    let byTenant = this.cache.get(pool);
    if (!byTenant) this.cache.set(pool, (byTenant = new Map()));
    let share = byTenant.get(tenant);
    if (share === undefined) byTenant.set(tenant, (share = this.weightedShare(tenant, pool)));
    return share;
  }

  /** Priority class first, then fair share with aging, then submit time, then id: the queue's order at `nowMs`. */
  comparator(nowMs: number): JobComparator {
    return (a, b) => b.priority - a.priority || this.key(a, nowMs) - this.key(b, nowMs) || a.submittedAtMs - b.submittedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  }
}

function ratio(used: number, capacity: number): number {
  return capacity > 0 ? used / capacity : 0;
}
