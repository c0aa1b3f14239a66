import type pg from 'pg';
import { billFor, disclosureReport, periodRange, summarize, type Bill, type DisclosureReport, type JobsServed, type PoolCapacity, type PriceTable, type UsageFilter, type UsageSummary } from '../billing';
import { QY_ERR_ARCHIVE_UNAVAILABLE, QY_ERR_VALIDATION } from '../errors';
import { taskKey, type JobState, type JobView, type Pool, type TaskUsage } from '../protocol';
import { CHAIN_START, verifyChain, type AuditRecord, type ChainPoint, type ChainVerdict } from '../store/audit-log';
import { isRowError } from './database';
import { historyRow, type HistoryRow, type TimeWindow } from './history';
import { usagesFromRows, type ArchivedJob, type UsageRow } from './records';
import { readWatermarks } from './watermarks';

/** Which archived jobs to list: each field narrows. The window selects as `sacct` does (see `isActiveInWindow`). */
export interface ArchivedJobFilter extends TimeWindow {
  tenant?: string;
  state?: JobState;
  pool?: Pool;
}

/** A page of archived jobs in submission order; `cursor` is the last id of the previous page, as in `GET /v1/jobs`. */
export interface JobPageRequest extends ArchivedJobFilter {
  limit: number;
  cursor?: string;
}

/** Which archived audit records to list, oldest first (the filters of `GET /v1/audit`). */
export interface AuditFilter {
  afterSeq?: number;
  /** The last sequence number wanted (a range with `afterSeq`). */
  throughSeq?: number;
  limit: number;
  actor?: string;
  action?: string;
  target?: string;
  sinceMs?: number;
  untilMs?: number;
}

/** The verdict over the archive and the live tail as one chain, with how much of it came from the archive. */
export type ArchiveChainVerdict = ChainVerdict & { archivedRecords: number };

const AUDIT_PAGE = 10_000;

/**
 * Reads the accounting archive: a job by id, pages of jobs and `sacct`-style history, metered usage of a
 * period (as task usages, so bills, usage and disclosure are computed by src/billing exactly as from
 * memory), audit records, and the audit chain checked across the archive and the live tail. A database
 * that cannot be reached is `QY_ERR_ARCHIVE_UNAVAILABLE` (503).
 */
export class ArchiveReader {
  constructor(private readonly db: pg.Pool) {}

  /** An archived job, or undefined. Tenant rules are the caller's: it compares `view.tenant`. */
  async job(id: string): Promise<ArchivedJob | undefined> {
    const { rows } = await this.query<{ view: JobView; spec: ArchivedJob['spec']; idempotency_key: string | null }>('SELECT view, spec, idempotency_key FROM archived_jobs WHERE id = $1', [id]);
    return rows[0] && { view: rows[0].view, spec: rows[0].spec, ...(rows[0].idempotency_key === null ? {} : { idempotencyKey: rows[0].idempotency_key }) };
  }

  /** The archived job a tenant submitted with this Idempotency-Key. */
  async jobByIdempotencyKey(tenant: string, key: string): Promise<ArchivedJob | undefined> {
    const { rows } = await this.query<{ id: string }>('SELECT id FROM archived_jobs WHERE tenant = $1 AND idempotency_key = $2 ORDER BY id LIMIT 1', [tenant, key]);
    return rows[0] && this.job(rows[0].id);
  }

  /** Which of these job ids are archived (e.g. to learn, after a restart, which finished jobs memory may drop). */
  async archivedJobIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.query<{ id: string }>('SELECT id FROM archived_jobs WHERE id = ANY($1::text[])', [ids]);
    return new Set(rows.map((r) => r.id));
  }

  /** A page of archived jobs in submission order (the API's job views). */
  async listJobs(request: JobPageRequest): Promise<{ items: JobView[]; nextCursor?: string }> {
    const where = jobConditions(request);
    if (request.cursor !== undefined) where.add('id > $?', request.cursor);
    // One more than asked: whether there is a next page.
    const { rows } = await this.query<{ view: JobView }>(`SELECT view FROM archived_jobs ${where.sql()} ORDER BY id LIMIT $${where.params.length + 1}`, [...where.params, request.limit + 1]);
    const items = rows.slice(0, request.limit).map((r) => r.view);
    return { items, nextCursor: rows.length > request.limit ? items[items.length - 1].id : undefined };
  }

  /** A page of `sacct`-style history lines. */
  async history(request: JobPageRequest, nowMs: number): Promise<{ items: HistoryRow[]; nextCursor?: string }> {
    const page = await this.listJobs(request);
    return { items: page.items.map((v) => historyRow(v, nowMs)), nextCursor: page.nextCursor };
  }

  /** Archived jobs that ended in [fromMs, toMs) by pool and outcome (the disclosure's jobs served), leaving out ids the caller counts itself. */
  async jobsServed(fromMs: number, toMs: number, exceptIds: readonly string[] = []): Promise<Partial<Record<Pool, JobsServed>>> {
    const { rows } = await this.query<{ pool: Pool; state: string; n: number }>(
      `SELECT pool, state, count(*) AS n FROM archived_jobs WHERE finished_at_ms >= $1 AND finished_at_ms < $2 AND NOT (id = ANY($3::text[])) GROUP BY pool, state ORDER BY pool, state`,
      [fromMs, toMs, exceptIds],
    );
    const served: Partial<Record<Pool, JobsServed>> = {};
    for (const r of rows) (served[r.pool] ??= {})[r.state] = r.n;
    return served;
  }

  /**
   * Metered task usages with the segments a filter selects (by the start of their clock hour, as
   * `selectSegments` does). `exceptKeys` leaves out tasks (by `taskKey`) the caller takes from memory.
   */
  async usages(filter: UsageFilter, exceptKeys?: ReadonlySet<string>): Promise<TaskUsage[]> {
    const where = new Conditions();
    if (filter.fromMs !== undefined) where.add('hour_start_ms >= $?', filter.fromMs);
    if (filter.toMs !== undefined) where.add('hour_start_ms < $?', filter.toMs);
    if (filter.tenant !== undefined) where.add('tenant = $?', filter.tenant);
    if (filter.pool !== undefined) where.add('pool = $?', filter.pool);
    if (filter.jobId !== undefined) where.add('job_id = $?', filter.jobId);
    const { rows } = await this.query<UsageRow>(
      `SELECT attempt_id, task_index, job_id, tenant, pool, node_id, billing_class, hour_start_ms, run_ms, cpu_milli_seconds, gpu_milli_seconds, mem_mib_seconds, energy_milli_wh, green_milli_wh, carbon_mg
       FROM usage_segments ${where.sql()} ORDER BY attempt_id COLLATE "C", task_index, segment_index`,
      where.params,
    );
    const usages = usagesFromRows(rows);
    return exceptKeys ? usages.filter((u) => !exceptKeys.has(taskKey(u))) : usages;
  }

  /** Usage of a period from the archive alone, summarised by src/billing (the shape of `GET /v1/usage`). */
  async usageSummary(period: string, filter: Omit<UsageFilter, 'fromMs' | 'toMs'>, timeZoneOffsetMinutes: number): Promise<UsageSummary & { period: string; interval: string }> {
    const range = periodRange(period, timeZoneOffsetMinutes);
    const selected = { ...filter, fromMs: range.fromMs, toMs: range.toMs };
    return { period: range.period, interval: range.interval, ...summarize(await this.usages(selected), selected) };
  }

  /** A tenant's bill for a period from the archive alone, by src/billing's `billFor`. */
  async bill(tenant: string, period: string, table: PriceTable): Promise<Bill> {
    const range = periodRange(period, table.timeZoneOffsetMinutes);
    return billFor(tenant, period, await this.usages({ tenant, fromMs: range.fromMs, toMs: range.toMs }), table);
  }

  /** The disclosure report of a period from the archive alone; capacity comes from the caller's node registry. */
  async disclosure(period: string, capacity: Partial<Record<Pool, PoolCapacity>>, timeZoneOffsetMinutes: number): Promise<DisclosureReport> {
    const range = periodRange(period, timeZoneOffsetMinutes);
    const [usages, jobsServed] = await Promise.all([this.usages({ fromMs: range.fromMs, toMs: range.toMs }), this.jobsServed(range.fromMs, range.toMs)]);
    return disclosureReport({ period, usages, capacity, jobsServed, timeZoneOffsetMinutes });
  }

  /** Archived audit records, oldest first, exactly as they were chained. */
  async auditRecords(filter: AuditFilter): Promise<AuditRecord[]> {
    const where = new Conditions();
    if (filter.afterSeq !== undefined) where.add('seq > $?', filter.afterSeq);
    if (filter.throughSeq !== undefined) where.add('seq <= $?', filter.throughSeq);
    if (filter.actor !== undefined) where.add('actor_name = $?', filter.actor);
    if (filter.action !== undefined) where.add('action = $?', filter.action);
    if (filter.target !== undefined) where.add('target = $?', filter.target);
    if (filter.sinceMs !== undefined) where.add('at_ms >= $?', filter.sinceMs);
    if (filter.untilMs !== undefined) where.add('at_ms < $?', filter.untilMs);
    const { rows } = await this.query<{ record: string }>(`SELECT record FROM archived_audit ${where.sql()} ORDER BY seq LIMIT $${where.params.length + 1}`, [...where.params, filter.limit]);
    return rows.map((r) => JSON.parse(r.record) as AuditRecord);
  }

  /**
   * Verifies the audit chain over the archive, page by page from record 1, then continues it with the live
   * tail (records still in the stream; those also archived must be the same records). The first record
   * missing or altered is named, wherever it is.
   */
  async verifyAudit(tail: readonly AuditRecord[]): Promise<ArchiveChainVerdict> {
    let point: ChainPoint = CHAIN_START;
    for (;;) {
      const page = await this.auditRecords({ afterSeq: point.seq, limit: AUDIT_PAGE });
      if (page.length === 0) break;
      const verdict = verifyChain(page, point);
      if (!verdict.ok) return { ...verdict, archivedRecords: verdict.seq - 1 };
      point = { seq: verdict.lastSeq, hash: verdict.lastHash };
    }
    const archivedRecords = point.seq;
    const overlap = tail.filter((r) => r.seq <= point.seq);
    if (overlap.length > 0) {
      const { rows } = await this.query<{ seq: number; hash: string }>('SELECT seq, hash FROM archived_audit WHERE seq = ANY($1::int8[])', [overlap.map((r) => r.seq)]);
      const archivedHash = new Map(rows.map((r) => [r.seq, r.hash]));
      const differing = overlap.find((r) => archivedHash.get(r.seq) !== r.hash);
      if (differing) return { ok: false, seq: differing.seq, problem: `record ${differing.seq} in the stream differs from the archived record ${differing.seq}`, archivedRecords };
    }
    const verdict = verifyChain(
      tail.filter((r) => r.seq > point.seq),
      point,
    );
    return { ...verdict, ...(verdict.ok ? { records: verdict.lastSeq } : {}), archivedRecords };
  }

  /** How far each log is archived, as the writers stored it. */
  async watermarks(): Promise<Map<string, number>> {
    return this.guard(() => readWatermarks(this.db));
  }

  /** Rows in each table (for benchmarks and operators). */
  async counts(): Promise<{ jobs: number; usageSegments: number; auditRecords: number }> {
    const { rows } = await this.query<{ jobs: number; segments: number; audit: number }>(
      'SELECT (SELECT count(*) FROM archived_jobs) AS jobs, (SELECT count(*) FROM usage_segments) AS segments, (SELECT count(*) FROM archived_audit) AS audit',
    );
    return { jobs: rows[0].jobs, usageSegments: rows[0].segments, auditRecords: rows[0].audit };
  }

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.guard(() => this.db.query<R>(sql, params));
  }

  /**
   * Unreachable, restarting, or not migrated yet: the archive is unavailable (503), not an internal error.
   * A data exception (SQLSTATE class 22) on a read is about the values asked for, since every column is
   * read as stored (e.g. a NUL byte, which no text column holds: the writer strips it): a bad request (400).
   */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const code = String((err as { code?: unknown }).code);
      if (/^22[0-9A-Z]{3}$/.test(code)) throw new QY_ERR_VALIDATION(`the accounting archive cannot look up these values: ${(err as Error).message}`);
      if (isRowError(err) || /^42(601|703|883)$/.test(code)) throw err;
      throw new QY_ERR_ARCHIVE_UNAVAILABLE((err as Error).message, { cause: err });
    }
  }
}

/** The job filters as SQL conditions. */
function jobConditions(f: ArchivedJobFilter): Conditions {
  const where = new Conditions();
  if (f.tenant !== undefined) where.add('tenant = $?', f.tenant);
  if (f.state !== undefined) where.add('state = $?', f.state);
  if (f.pool !== undefined) where.add('pool = $?', f.pool);
  // Every archived job has finished; see isActiveInWindow.
  if (f.untilMs !== undefined) where.add('submitted_at_ms < $?', f.untilMs);
  if (f.sinceMs !== undefined) where.add('finished_at_ms >= $?', f.sinceMs);
  return where;
}

/** A WHERE clause built from conditions with one parameter each (`$?` is numbered in order). */
class Conditions {
  readonly params: unknown[] = [];
  private readonly parts: string[] = [];

  add(condition: string, value: unknown): void {
    this.params.push(value);
    this.parts.push(condition.replace('$?', `$${this.params.length}`));
  }

  sql(): string {
    return this.parts.length > 0 ? `WHERE ${this.parts.join(' AND ')}` : '';
  }
}
