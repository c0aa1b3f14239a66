import type { SchedJob } from './model';

/** Pending jobs with a latest start are escalated at least this long before it if they still wait. */
export const ESCALATION_LEAD_MS = 30 * 60_000;

/** Room before a deferrable job's latest start for its place in the queue: the part of the safety margin that is not a rerun. */
export const DEADLINE_SAFETY_MS = 3_600_000;

/**
 * A deferrable job's safety margin before its latest start: {@link DEADLINE_SAFETY_MS} for a queue to let it
 * in, plus, with `rerun`, room to run it once more from the start after a node failure kills it (its
 * walltime, or its declared run time when that is longer). A job still waiting at its latest start less this
 * margin is escalated ahead of every class, and no deferral plans it later.
 */
export function safetyMarginMs(job: { durationMs?: number; walltimeMs?: number }, rerun = true): number {
  return DEADLINE_SAFETY_MS + (rerun ? Math.max(job.durationMs ?? 0, job.walltimeMs ?? 0) : 0);
}

/** When a pending deferrable job goes ahead of every class: its latest start less its safety margin (never after the latest start less {@link ESCALATION_LEAD_MS}); undefined without a latest start. */
export function escalationAtOf(job: SchedJob): number | undefined {
  const latestStartMs = latestStartOfJob(job);
  return latestStartMs === undefined ? undefined : latestStartMs - Math.max(ESCALATION_LEAD_MS, safetyMarginMs(job));
}

export interface Deferral {
  submittedAtMs: number;
  durationMs: number;
  /** Latest completion, epoch ms. */
  deadlineMs?: number;
  /** Longest delay of the start past submission. */
  maxDelaySeconds?: number;
}

/**
 * The latest start that meets both limits a deferrable job may declare: its deadline (deadline − duration) and
 * its longest delay (submission + delay), the earlier of the two; never before submission, so a job that cannot
 * meet its deadline, or that declares neither limit, starts as soon as it is submitted.
 */
export function latestStartOf(job: Deferral): number {
  const byDeadline = (job.deadlineMs ?? Infinity) - job.durationMs;
  const byDelay = job.submittedAtMs + (job.maxDelaySeconds ?? Infinity) * 1000;
  const latest = Math.min(byDeadline, byDelay);
  return Number.isFinite(latest) ? Math.max(job.submittedAtMs, latest) : job.submittedAtMs;
}

/** A job's latest start from its deferrable limits and its declared run time (else its walltime); undefined without both. */
export function latestStartOfJob(job: SchedJob): number | undefined {
  const durationMs = job.durationMs ?? job.walltimeMs;
  if (!job.deferrable || durationMs === undefined) return undefined;
  return latestStartOf({ submittedAtMs: job.submittedAtMs, durationMs, deadlineMs: job.deferrable.deadlineMs, maxDelaySeconds: job.deferrable.maxDelaySeconds });
}
