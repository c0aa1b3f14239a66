import type { SchedJob } from '../core';
import type { NodeSpec, Pool, TaskResources } from '../protocol';
import { SYNTHETIC_PRIORITIES, type TimedJob } from './synthetic';

/** A workload to replay: jobs in submit order, and the machine it ran on when the trace says. */
export interface Trace {
  /** The file name, or `synthetic:<arrivals>` for a generated workload. */
  name: string;
  jobs: TimedJob[];
  /** Records left out, by reason (for example `no run time`), so a report says what it did not replay. */
  skipped: Record<string, number>;
  /** The cluster the trace describes, used when no cluster file is given. */
  cluster?: NodeSpec[];
  /**
   * Tasks of `super` jobs share nodes (processor-level allocation, as published results on SWF traces
   * assume) instead of taking whole nodes.
   */
  processorLevel?: boolean;
}

const NO_CONSTRAINTS: SchedJob['constraints'] = { gpuModels: [], nodeSelector: {}, affinity: [], antiAffinity: [], preferred: [], tolerations: [] };

/** What a trace record says about a job; everything else gets the defaults of a submitted spec. */
export interface TraceJobFields {
  id: string;
  tenant: string;
  pool: Pool;
  submittedAtMs: number;
  runMs: number;
  task: Partial<TaskResources> & { cpuMillis: number };
  tasks?: number;
  walltimeMs?: number;
  priorityClass?: string;
  priority?: number;
  gpuModels?: string[];
  exclusive?: boolean;
}

/** A trace record as the core's job plus its run time. */
export function traceJob(f: TraceJobFields): TimedJob {
  const priorityClass = f.priorityClass ?? 'normal';
  const job: SchedJob = {
    id: f.id,
    tenant: f.tenant,
    pool: f.pool,
    priorityClass,
    priority: f.priority ?? SYNTHETIC_PRIORITIES[priorityClass] ?? 0,
    task: { memBytes: 0, gpus: 0, gpuMilli: 0, gpuMemBytes: 0, extended: {}, ...f.task },
    tasks: f.tasks ?? 1,
    exclusive: f.exclusive ?? false,
    walltimeMs: f.walltimeMs,
    durationMs: f.runMs,
    constraints: f.gpuModels && f.gpuModels.length > 0 ? { ...NO_CONSTRAINTS, gpuModels: f.gpuModels } : NO_CONSTRAINTS,
    dataClass: 'public',
    submittedAtMs: f.submittedAtMs,
  };
  return { job, runMs: f.runMs };
}

/** A trace's job id, zero-padded so that ids sort in trace order (ties in submit time keep that order). */
export function traceJobId(prefix: string, n: number): string {
  return `${prefix}-${String(n).padStart(8, '0')}`;
}

/** Counts a skipped record under its reason. */
export function skip(skipped: Record<string, number>, reason: string): void {
  skipped[reason] = (skipped[reason] ?? 0) + 1;
}

/** Sorts jobs by submit time (stable: equal times keep trace order). */
export function inSubmitOrder(jobs: TimedJob[]): TimedJob[] {
  return jobs.sort((a, b) => a.job.submittedAtMs - b.job.submittedAtMs);
}
