import { TERMINAL_JOB_STATES, taskKey, type JobSpec, type JobView, type TaskUsage } from '../protocol';
import type { AuditRecord } from '../store/audit-log';

/**
 * What the accounting archive holds, and how each record becomes rows. Each record has one key, the same
 * the scheduler uses in memory, so writing it twice (a retry, a crash, a second leader) keeps one row:
 * a job by its id, a task's metered usage by attempt and task (one row per segment of it), an audit
 * record by its sequence number.
 */

/** A job that has ended, as the archive keeps it. */
export interface ArchivedJob {
  /** The API's view of the job as it ended: what `GET /v1/jobs/:id` answers once it has left memory. */
  view: JobView;
  /** The spec as submitted. */
  spec: JobSpec;
  /** The tenant's Idempotency-Key of the submission, so a late retry can still find the job. */
  idempotencyKey?: string;
}

/** Where a record came from in a log (the job log's stream sequence): what `archivedThrough` counts in. */
export interface LogPosition {
  /** The log's name, chosen by the caller: one per stream, or per pool when pools have different leaders. */
  log: string;
  seq: number;
}

/** One record offered to the archive. */
export type ArchiveRecord = { kind: 'job'; job: ArchivedJob; at?: LogPosition } | { kind: 'usage'; usage: TaskUsage; at?: LogPosition } | { kind: 'audit'; record: AuditRecord };
export type ArchiveRecordKind = ArchiveRecord['kind'];

/** The key a record is stored under in its table, as text. */
export function recordKey(r: ArchiveRecord): string {
  switch (r.kind) {
    case 'job':
      return r.job.view.id;
    case 'usage':
      return taskKey(r.usage);
    case 'audit':
      return String(r.record.seq);
  }
}

/** PostgreSQL text cannot hold NUL; the JSON columns keep the original (JSON escapes it). */
const text = (s: string | undefined | null): string | null => (s === undefined || s === null ? null : s.replaceAll('\u0000', ''));
const msOf = (iso: string | undefined): number | null => (iso === undefined ? null : Date.parse(iso));

/** Columns of `archived_jobs`, in insert order, with their SQL types (for `unnest`). */
export const JOB_COLUMNS = [
  ['id', 'text'],
  ['tenant', 'text'],
  ['pool', 'text'],
  ['state', 'text'],
  ['name', 'text'],
  ['priority_class', 'text'],
  ['data_class', 'text'],
  ['tasks', 'int4'],
  ['submitted_at_ms', 'int8'],
  ['started_at_ms', 'int8'],
  ['finished_at_ms', 'int8'],
  ['attempts', 'int4'],
  ['exit_code', 'int4'],
  ['signal', 'text'],
  ['reason', 'text'],
  ['node_list', 'text'],
  ['idempotency_key', 'text'],
  ['spec', 'json'],
  ['view', 'json'],
] as const;

/** Throws for a job that has not ended: the archive holds final records only, and a row is never updated. */
export function assertEnded(job: ArchivedJob): void {
  const v = job.view;
  if (!TERMINAL_JOB_STATES.has(v.state) || v.finishedAt === undefined) throw new TypeError(`job ${v.id} is ${v.state}: only jobs that have ended are archived`);
}

/** A finished job as a row, with the columns the history queries filter on. */
export function jobRow(job: ArchivedJob): unknown[] {
  assertEnded(job);
  const v = job.view;
  const nodes = [...new Set(v.placement?.map((p) => p.nodeId) ?? [])];
  return [
    text(v.id),
    text(v.tenant),
    v.pool,
    v.state,
    text(v.name),
    text(v.priorityClass),
    v.dataClass,
    v.tasks,
    msOf(v.submittedAt),
    msOf(v.startedAt),
    msOf(v.finishedAt),
    v.attempts,
    v.exitCode ?? null,
    text(v.signal),
    text(v.reason),
    nodes.length > 0 ? text(nodes.join(',')) : null,
    text(job.idempotencyKey),
    JSON.stringify(job.spec),
    JSON.stringify(v),
  ];
}

/** Columns of `usage_segments`: the task's identity repeated on each of its segments (one clock hour each). */
export const USAGE_COLUMNS = [
  ['attempt_id', 'text'],
  ['task_index', 'int4'],
  ['segment_index', 'int4'],
  ['job_id', 'text'],
  ['tenant', 'text'],
  ['pool', 'text'],
  ['node_id', 'text'],
  ['billing_class', 'text'],
  ['hour_start_ms', 'int8'],
  ['run_ms', 'int8'],
  ['cpu_milli_seconds', 'int8'],
  ['gpu_milli_seconds', 'json'],
  ['mem_mib_seconds', 'int8'],
  ['energy_milli_wh', 'int8'],
  ['green_milli_wh', 'int8'],
  ['carbon_mg', 'int8'],
] as const;

/** A task's metered usage as rows, one per segment, keyed by attempt, task and the segment's place in the record. */
export function usageRows(u: TaskUsage): unknown[][] {
  return u.segments.map((s, i) => [
    text(u.attemptId),
    u.taskIndex,
    i,
    text(u.jobId),
    text(u.tenant),
    u.pool,
    text(u.nodeId),
    u.billingClass,
    s.hourStartMs,
    s.runMs,
    s.cpuMilliSeconds,
    JSON.stringify(s.gpuMilliSeconds),
    s.memMiBSeconds,
    s.energyMilliWh,
    s.greenMilliWh,
    s.carbonMg,
  ]);
}

/** A row of `usage_segments` as the reader gets it. */
export interface UsageRow {
  attempt_id: string;
  task_index: number;
  job_id: string;
  tenant: string;
  pool: TaskUsage['pool'];
  node_id: string;
  billing_class: TaskUsage['billingClass'];
  hour_start_ms: number;
  run_ms: number;
  cpu_milli_seconds: number;
  gpu_milli_seconds: Record<string, number>;
  mem_mib_seconds: number;
  energy_milli_wh: number;
  green_milli_wh: number;
  carbon_mg: number;
}

/** Rows back into task usages: consecutive rows of one task (the reader orders them so) make one record. */
export function usagesFromRows(rows: readonly UsageRow[]): TaskUsage[] {
  const out: TaskUsage[] = [];
  let last: TaskUsage | undefined;
  for (const r of rows) {
    if (!last || last.attemptId !== r.attempt_id || last.taskIndex !== r.task_index) {
      last = { jobId: r.job_id, attemptId: r.attempt_id, taskIndex: r.task_index, tenant: r.tenant, pool: r.pool, nodeId: r.node_id, billingClass: r.billing_class, segments: [] };
      out.push(last);
    }
    last.segments.push({
      hourStartMs: r.hour_start_ms,
      runMs: r.run_ms,
      cpuMilliSeconds: r.cpu_milli_seconds,
      gpuMilliSeconds: r.gpu_milli_seconds,
      memMiBSeconds: r.mem_mib_seconds,
      energyMilliWh: r.energy_milli_wh,
      greenMilliWh: r.green_milli_wh,
      carbonMg: r.carbon_mg,
    });
  }
  return out;
}

/** Columns of `archived_audit`: the record verbatim (its hash covers exactly that), plus what the filters need. */
export const AUDIT_COLUMNS = [
  ['seq', 'int8'],
  ['at_ms', 'int8'],
  ['actor_kind', 'text'],
  ['actor_name', 'text'],
  ['action', 'text'],
  ['target', 'text'],
  ['outcome', 'text'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
  ['record', 'text'],
] as const;

export function auditRow(r: AuditRecord): unknown[] {
  return [r.seq, r.atMs, r.actor.kind, text(r.actor.name), text(r.action), text(r.target), r.outcome, r.prevHash, r.hash, JSON.stringify(r)];
}
