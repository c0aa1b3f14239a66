import type { BillingClass, Pool, StatusReport, TaskUsage, UsageSegment } from '../src/protocol';

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
  };
}

/** The key of a task's usage: one record per task of an attempt. */
export function usageKey(u: { attemptId: string; taskIndex: number }): string {
  return `${u.attemptId}/${u.taskIndex}`;
}

/**
 * Metered usage, rebuilt from the job log like everything else: `metered` events are the record; reports
 * that carried usage but have no `metered` event yet (the scheduler stopped in between) are metered again
 * after a rebuild, once — the event's message id and the key here keep it to one record per task.
 */
export class UsageLedger {
  private readonly metered = new Map<string, TaskUsage>();
  private readonly waiting = new Map<string, StatusReport & { usage: UsageSegment[] }>();

  /** A status report that carried usage. */
  noteReport(report: StatusReport & { usage: UsageSegment[] }): void {
    const key = usageKey(report);
    if (!this.metered.has(key)) this.waiting.set(key, report);
  }

  record(usage: TaskUsage): void {
    const key = usageKey(usage);
    this.metered.set(key, usage);
    this.waiting.delete(key);
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
