import type { JobView } from './api';

/**
 * Job history as `sacct` prints it: one line per job, derived from the API's job view, so the accounting
 * archive's history and `qy history` (which builds its lines from `GET /v1/jobs`) give the same rows.
 */

/** One line of job history, after Slurm's `sacct`. */
export interface HistoryRow {
  id: string;
  name: string | null;
  tenant: string;
  pool: string;
  priorityClass: string;
  state: string;
  tasks: number;
  submittedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** From start to end (or to now for a job still running); null before it starts. */
  elapsedSeconds: number | null;
  attempts: number;
  exitCode: number | null;
  signal: string | null;
  /** Nodes of the last attempt, comma-separated. */
  nodeList: string | null;
  reason: string | null;
}

export const HISTORY_COLUMNS: readonly (keyof HistoryRow)[] = ['id', 'name', 'tenant', 'pool', 'priorityClass', 'state', 'tasks', 'submittedAt', 'startedAt', 'finishedAt', 'elapsedSeconds', 'attempts', 'exitCode', 'signal', 'nodeList', 'reason'];

/** A job's history line; `nowMs` gives the elapsed time of a job still running. */
export function historyRow(v: JobView, nowMs: number): HistoryRow {
  const startedMs = v.startedAt === undefined ? undefined : Date.parse(v.startedAt);
  const endMs = v.finishedAt === undefined ? nowMs : Date.parse(v.finishedAt);
  const nodes = [...new Set(v.placement?.map((p) => p.nodeId) ?? [])];
  return {
    id: v.id,
    name: v.name ?? null,
    tenant: v.tenant,
    pool: v.pool,
    priorityClass: v.priorityClass,
    state: v.state,
    tasks: v.tasks,
    submittedAt: v.submittedAt,
    startedAt: v.startedAt ?? null,
    finishedAt: v.finishedAt ?? null,
    elapsedSeconds: startedMs === undefined ? null : Math.max(0, Math.round((endMs - startedMs) / 1000)),
    attempts: v.attempts,
    exitCode: v.exitCode ?? null,
    signal: v.signal ?? null,
    nodeList: nodes.length > 0 ? nodes.join(',') : null,
    reason: v.reason ?? null,
  };
}

