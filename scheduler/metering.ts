import { taskKey, type BillingClass, type Pool, type StatusReport, type TaskUsage, type UsageSegment } from '../src/protocol';

const HALF_HOUR_MS = 1_800_000;

/** What metering needs to know of the job a report is about. */
export interface MeteredJob {
  tenant: string;
  pool: Pool;
  billingClass: BillingClass;
}

/** Settings of metering: the facility's power usage effectiveness and the grid's carbon intensity over time. */
export interface MeteringSettings {
  /** Facility energy per unit of IT energy (cooling, power conversion), ≥ 1. */
  pue: number;
  /** Grid carbon intensity at a time, gCO2/kWh. */
  carbonAt(atMs: number): number;
}

/**
 * Turns what an agent reported a task used (IT energy, as its node drew it) into metered usage: energy
 * and green energy times the PUE, carbon of the part that was not green at the grid's intensity in the
 * middle of each hour. Integers throughout, rounded once per segment, so sums over tasks are exact.
 */
export function meterReport(report: StatusReport & { usage: UsageSegment[] }, job: MeteredJob, settings: MeteringSettings): TaskUsage {
  return {
    jobId: report.jobId,
    attemptId: report.attemptId,
    taskIndex: report.taskIndex,
    tenant: job.tenant,
    pool: job.pool,
    nodeId: report.nodeId,
    billingClass: job.billingClass,
    segments: report.usage.map((s) => {
      const energyMilliWh = Math.round(s.energyMilliWh * settings.pue);
      const greenMilliWh = Math.min(energyMilliWh, Math.round(s.greenMilliWh * settings.pue));
      // mWh × g/kWh = µg; /1000 → mg.
      const carbonMg = Math.round(((energyMilliWh - greenMilliWh) * settings.carbonAt(s.hourStartMs + HALF_HOUR_MS)) / 1000);
      return { ...s, energyMilliWh, greenMilliWh, carbonMg };
    }),
    ...(report.measured ? { measured: report.measured } : {}),
  };
}


/**
 * Metered usage, rebuilt from the job log like everything else: `metered` events are the record; reports
 * that carried usage but have no `metered` event yet (the scheduler stopped in between) are metered again
 * after a rebuild, once — the event's message id and the key here keep it to one record per task.
 */
export class UsageLedger {
  private readonly metered = new Map<string, TaskUsage>();
  private readonly waiting = new Map<string, StatusReport & { usage: UsageSegment[] }>();
  /** The keys of each job's tasks, so a job's usage leaves memory without a scan. */
  private readonly keysOfJob = new Map<string, Set<string>>();

  /** Forgets everything (a rebuild replays it). */
  reset(): void {
    this.metered.clear();
    this.waiting.clear();
    this.keysOfJob.clear();
  }

  /** Lets a finished job's usage go from memory (it is in the accounting archive). */
  evict(jobId: string): void {
    for (const key of this.keysOfJob.get(jobId) ?? []) {
      this.metered.delete(key);
      this.waiting.delete(key);
    }
    this.keysOfJob.delete(jobId);
  }

  /** A job's metered usage in memory. */
  usageOf(jobId: string): TaskUsage[] {
    const out: TaskUsage[] = [];
    for (const key of this.keysOfJob.get(jobId) ?? []) {
      const u = this.metered.get(key);
      if (u) out.push(u);
    }
    return out;
  }

  /** Everything, as plain data, for a snapshot. */
  serialize(): { metered: TaskUsage[]; waiting: (StatusReport & { usage: UsageSegment[] })[] } {
    return { metered: [...this.metered.values()], waiting: [...this.waiting.values()] };
  }

  restore(data: ReturnType<UsageLedger['serialize']>): void {
    for (const u of data.metered) this.record(u);
    for (const r of data.waiting) this.noteReport(r);
  }

  /** A status report that carried usage. */
  noteReport(report: StatusReport & { usage: UsageSegment[] }): void {
    const key = taskKey(report);
    if (this.metered.has(key)) return;
    this.waiting.set(key, report);
    this.index(report.jobId, key);
  }

  /** A `metered` event. The first one of a task counts, as in the accounting archive, which keeps the first row of each key. */
  record(usage: TaskUsage): void {
    const key = taskKey(usage);
    if (!this.metered.has(key)) this.metered.set(key, usage);
    this.waiting.delete(key);
    this.index(usage.jobId, key);
  }

  private index(jobId: string, key: string): void {
    let keys = this.keysOfJob.get(jobId);
    if (!keys) this.keysOfJob.set(jobId, (keys = new Set()));
    keys.add(key);
  }

  has(key: string): boolean {
    return this.metered.has(key);
  }

  /** Reports with usage that is not metered yet. */
  unmetered(): (StatusReport & { usage: UsageSegment[] })[] {
    return [...this.waiting.values()];
  }

  all(): TaskUsage[] {
    return [...this.metered.values()];
  }
}
