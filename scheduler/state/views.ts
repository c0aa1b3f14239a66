import { formatFailure, type PendingQueue } from '../../src/core';
import type { JobView } from '../../src/protocol';
import type { JobRecord } from './job-table';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The API's view of a job. */
export function jobView(job: JobRecord, pending: PendingQueue): JobView {
  const current = job.current ?? job.attempts[job.attempts.length - 1];
  const why = job.state === 'pending' ? pending.whyWaiting(job.id) : undefined;
  const pendingReason = why ? [why.reason, why.failure && formatFailure(why.failure)].filter(Boolean).join('; ') : 'waiting for the next scheduling cycle';
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
    })),
    pendingReason: job.state === 'pending' ? pendingReason : undefined,
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
  };
}
