import type { SchedJob } from './model';

/** Pending jobs with a latest start are escalated at least this long before it if they still wait. */
export const ESCALATION_LEAD_MS = 30 * 60_000;

/** Room before a deferrable job's latest start for its place in the queue: the part of the safety margin that is not a rerun. */
export const DEADLINE_SAFETY_MS = 3_600_000;

/**
 * A deferrable job's safety margin before its latest start: {@link DEADLINE_SAFETY_MS} for a queue to let it
 * in, plus room to run it `reruns` more times from the start after node failures kill it (each its walltime,
 * or its declared run time when that is longer; one rerun unless said, see {@link rerunsFor}). A job still
 * waiting at its latest start less this margin is escalated ahead of every class, and no deferral plans it later.
 */
export function safetyMarginMs(job: { durationMs?: number; walltimeMs?: number }, reruns = 1): number {
  return DEADLINE_SAFETY_MS + reruns * Math.max(job.durationMs ?? 0, job.walltimeMs ?? 0);
}

/** The chance a deferral plan may leave that a job's run and every rerun its margin has room for are all cut by node failures. */
export const RERUN_RISK = 1e-4;

/** The most reruns a safety margin makes room for. */
export const MAX_RERUNS = 3;

/**
 * How many reruns a deferrable job's safety margin makes room for: one, or where nodes fail often enough that
 * a run is cut with probability p (1 − e^(−tasks × run time / the nodes' mean time between failures), its
 * tasks on nodes of their own, the worst case), the fewest k that make p^(k+1) ≤ {@link RERUN_RISK}, at most
 * {@link MAX_RERUNS}. Green-blind scheduling starts a deferrable job at once, with all its slack for reruns;
 * a plan that starts it as late as one rerun allows would, under frequent failures, miss deadlines that
 * green-blind meets. Without a known failure rate: one.
 */
export function rerunsFor(job: { tasks: number; durationMs?: number; walltimeMs?: number }, nodeMtbfMs?: number): number {
  if (nodeMtbfMs === undefined || !(nodeMtbfMs > 0)) return 1;
  const runMs = job.durationMs ?? job.walltimeMs ?? 0;
  const cut = 1 - Math.exp(-(Math.max(1, job.tasks) * runMs) / nodeMtbfMs);
  let reruns = 1;
  while (reruns < MAX_RERUNS && cut ** (reruns + 1) > RERUN_RISK) reruns++;
  return reruns;
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
