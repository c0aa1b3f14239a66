import type { Placement, SchedJob } from '../model';
import type { TenantUsage } from '../cluster';

/** A tenant's limits in one pool; an absent limit is no limit. */
export interface QuotaLimits {
  cpuMillis?: number;
  gpus?: number;
  /** Jobs placed or running at once. */
  runningJobs?: number;
}

/**
 * Why a tenant's quota holds a job back, if it does (PreFilter). Without a placement the job's request is
 * counted; with one, what the placement takes (whole nodes in an exclusive pool count whole).
 */
export function quotaBlock(job: SchedJob, quota: QuotaLimits, used: TenantUsage, placement?: Placement): string | undefined {
  const who = `tenant ${job.tenant} is at its ${job.pool} quota`;
  if (quota.runningJobs !== undefined && used.jobs + 1 > quota.runningJobs) return `${who} of ${quota.runningJobs} running jobs`;
  const cpuMillis = placement ? placement.tasks.reduce((s, t) => s + t.cpuMillis, 0) : job.tasks * job.task.cpuMillis;
  if (quota.cpuMillis !== undefined && used.cpuMillis + cpuMillis > quota.cpuMillis) {
    return `${who} of ${quota.cpuMillis / 1000} cores (${used.cpuMillis / 1000} in use, this job needs ${cpuMillis / 1000})`;
  }
  const gpuMilli = placement ? placement.tasks.reduce((s, t) => s + t.gpuIndices.length * t.gpuMilliEach, 0) : job.tasks * (job.task.gpus * 1000 + job.task.gpuMilli);
  if (quota.gpus !== undefined && used.gpuMilli + gpuMilli > quota.gpus * 1000) {
    return `${who} of ${quota.gpus} GPUs (${used.gpuMilli / 1000} in use, this job needs ${gpuMilli / 1000})`;
  }
  return undefined;
}
