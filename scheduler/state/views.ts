import type { ArchivedJob } from '../../src/archive';
import { formatFailure, type PendingQueue } from '../../src/core';
import type { JobView } from '../../src/protocol';
import type { JobRecord } from './job-table';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The pending reason of a job no scheduling cycle has tried yet. */
export const UNTRIED_REASON = 'waiting for the next scheduling cycle';

/** The API's view of a job; `withSpec` adds what it was submitted with (one job's page; lists stay lean). */
export function jobView(job: JobRecord, pending: PendingQueue, options: { withSpec?: boolean } = {}): JobView {
  const current = job.current ?? job.attempts[job.attempts.length - 1];
  const why = job.state === 'pending' ? pending.whyWaiting(job.id) : undefined;
  const pendingReason = why ? [why.reason, why.failure && formatFailure(why.failure)].filter(Boolean).join('; ') : UNTRIED_REASON;
  return {
    id: job.id,
    name: job.spec.name,
    tenant: job.tenant,
    pool: job.spec.pool,
    priorityClass: job.spec.priorityClass,
    dataClass: job.spec.dataClass,
    state: job.state,
    tasks: job.spec.tasks,
    resources: job.spec.resources,
    attempts: job.attempts.length,
    maxAttempts: job.maxAttempts,
    attemptId: current?.attemptId,
    placement: current?.tasks.map((t) => ({
      taskIndex: t.placement.taskIndex,
      nodeId: t.placement.nodeId,
      cpuMillis: t.placement.cpuMillis,
      memBytes: t.placement.memBytes,
      gpuIndices: t.placement.gpuIndices,
      gpuMilliEach: t.placement.gpuMilliEach,
      state: t.state,
      exitCode: t.exitCode,
      signal: t.signal,
      reason: t.reason,
      cpuSeconds: t.measured?.cpuSeconds,
      peakMemBytes: t.measured?.peakMemBytes,
    })),
    pendingReason: job.state === 'pending' ? pendingReason : undefined,
    ...(job.route === undefined ? {} : { route: job.route }),
    ...(job.homeSite === undefined ? {} : { homeSite: job.homeSite }),
    preempting: job.preempting.length > 0 ? job.preempting : undefined,
    exitCode: job.exitCode,
    signal: job.signal,
    reason: job.reason,
    submittedAt: iso(job.submittedAtMs)!,
    placedAt: iso(current?.placedAtMs),
    startedAt: iso(current?.startedAtMs),
    finishedAt: iso(job.finishedAtMs),
    history: job.attempts.map((a) => ({
      attemptId: a.attemptId,
      nodes: [...new Set(a.placement.tasks.map((t) => t.nodeId))],
      outcome: a.outcome ?? (a === job.current ? job.state : 'unknown'),
      reason: a.stop?.reason,
      at: iso(a.endedAtMs ?? a.placedAtMs)!,
    })),
    spec: options.withSpec ? specView(job.spec) : undefined,
  };
}

/** What a job was submitted with, as the API shows it: of `env` only the names. */
export function specView(spec: JobRecord['spec']): NonNullable<JobView['spec']> {
  const { command, env, walltimeSeconds, durationSeconds, exclusive, constraints, deferrable, sandbox, labels } = spec;
  return { command, envNames: Object.keys(env ?? {}), walltimeSeconds, durationSeconds, exclusive, constraints, deferrable, sandbox, labels };
}

/** A job that has ended, as the accounting archive keeps it: its view (what the API answers after it leaves memory) and spec. */
export function archivedJobOf(job: JobRecord, pending: PendingQueue): ArchivedJob {
  return { view: jobView(job, pending), spec: job.spec, ...(job.idempotencyKey === undefined ? {} : { idempotencyKey: job.idempotencyKey }) };
}

/** The API's view of a job that has left memory, from its archived record; `withSpec` as in `jobView`. */
export function archivedJobView(archived: ArchivedJob, options: { withSpec?: boolean } = {}): JobView {
  return options.withSpec ? { ...archived.view, spec: specView(archived.spec) } : archived.view;
}
