import type pg from 'pg';
import type { TaskUsage } from '../protocol';
import type { AuditRecord } from '../store/audit-log';
import type { Logger } from '../telemetry/logger';
import { isRowError, withConnection } from './database';
import { FAILPOINTS, failpoint } from '../failpoints';
import { migrate } from './migrations';
import { AUDIT_COLUMNS, JOB_COLUMNS, USAGE_COLUMNS, assertEnded, auditRow, jobRow, recordKey, usageRows, type ArchiveRecord, type ArchiveRecordKind, type ArchivedJob, type LogPosition } from './records';
import { LogWatermarks, archivedAuditPrefix, readWatermarks, storeWatermarks } from './watermarks';

/** What the writer reports as it goes, for metrics and for the caller's retention of what is archived. */
export interface ArchiveWriterHooks {
  /** A batch is stored (rows new to the archive per kind; duplicates are not counted). The records may now leave memory. */
  written?(batch: { records: readonly ArchiveRecord[]; insertedRows: Record<ArchiveRecordKind, number>; seconds: number }): void;
  /** A write failed. `willRetry` is false for a record set aside because the database refuses its data. */
  failed?(err: Error, willRetry: boolean): void;
  /** A record was refused because the buffer is full: the caller keeps it and offers it again later. */
  refused?(kind: ArchiveRecordKind): void;
}

export interface ArchiveWriterOptions {
  /** Records held at most, written or not yet; beyond it `enqueue*` refuses (returns false). Default 100,000. */
  maxBufferedRecords?: number;
  /** Records per transaction. Default 500. */
  maxBatchRecords?: number;
  /** How long a record may wait for others to share its transaction. Default 50 ms. */
  lingerMs?: number;
  /** Backoff while the database is unavailable: from this, doubling, up to `retryMaxMs`. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  now?: () => number;
  log?: Logger;
  /** Metrics (`ArchiveMetrics.hooks`), the caller's retention, tests: each is told every event. */
  hooks?: ArchiveWriterHooks | readonly ArchiveWriterHooks[];
}

interface Entry {
  record: ArchiveRecord;
  /** `kind:key`: a record offered again while still buffered is not buffered twice. */
  id: string;
  enqueuedAtMs: number;
  /** Order of acceptance, for `flush`. */
  ordinal: number;
}

const TABLES: Record<ArchiveRecordKind, { table: string; columns: readonly (readonly [string, string])[]; conflict: string }> = {
  job: { table: 'archived_jobs', columns: JOB_COLUMNS, conflict: 'id' },
  usage: { table: 'usage_segments', columns: USAGE_COLUMNS, conflict: 'attempt_id, task_index, segment_index' },
  audit: { table: 'archived_audit', columns: AUDIT_COLUMNS, conflict: 'seq' },
};

/** A record that cannot be made into rows (a bug upstream): set aside like one the database refuses. */
class UnwritableRecord extends Error {}
const isRefused = (err: unknown) => err instanceof UnwritableRecord || isRowError(err);

/** One statement for any number of rows: each column is one array parameter, zipped by unnest. */
const INSERT_SQL = Object.fromEntries(
  Object.entries(TABLES).map(([kind, t]) => [
    kind,
    `INSERT INTO ${t.table} (${t.columns.map(([c]) => c).join(', ')}) SELECT * FROM unnest(${t.columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')}) ON CONFLICT (${t.conflict}) DO NOTHING`,
  ]),
) as Record<ArchiveRecordKind, string>;

/**
 * Writes finished jobs, metered usage and audit records to the archive without ever making the caller
 * wait: `enqueue*` only buffers, and a loop writes batches in transactions of multi-row
 * `INSERT … ON CONFLICT DO NOTHING`, so a record written twice (a retry after a lost answer, a crash, a
 * second leader) keeps one row. While the database is down, records stay buffered and the loop retries
 * with backoff; the lag and the watermarks say how far behind the archive is, so compaction can wait.
 */
export class ArchiveWriter {
  private readonly queue: Entry[] = [];
  private head = 0;
  /** Records the database refused (a data error): kept, counted in the lag, and holding the watermarks. */
  private readonly parked: Entry[] = [];
  private readonly buffered = new Set<string>();
  private nextOrdinal = 1;

  private readonly watermarks = new LogWatermarks();
  private auditThrough = 0;
  private readonly auditAbove = new Set<number>();

  private prepared = false;
  private running = false;
  private closed = false;
  private available: boolean | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private retryMs: number;
  private loop: Promise<void> | undefined;
  private flushWaiters: { ordinal: number; resolve: (done: boolean) => void }[] = [];

  private readonly maxBuffered: number;
  private readonly maxBatch: number;
  private readonly lingerMs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly now: () => number;
  private readonly hooks: ArchiveWriterHooks;

  constructor(
    private readonly db: pg.Pool,
    private readonly options: ArchiveWriterOptions = {},
  ) {
    this.maxBuffered = options.maxBufferedRecords ?? 100_000;
    this.maxBatch = options.maxBatchRecords ?? 500;
    this.lingerMs = options.lingerMs ?? 50;
    this.retryInitialMs = options.retryInitialMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.retryMs = this.retryInitialMs;
    this.now = options.now ?? Date.now;
    const hooks: readonly ArchiveWriterHooks[] = Array.isArray(options.hooks) ? options.hooks : options.hooks ? [options.hooks as ArchiveWriterHooks] : [];
    this.hooks = {
      written: (batch) => hooks.forEach((h) => h.written?.(batch)),
      failed: (err, willRetry) => hooks.forEach((h) => h.failed?.(err, willRetry)),
      refused: (kind) => hooks.forEach((h) => h.refused?.(kind)),
    };
  }

  /** Starts the loop: migrations, then whatever is buffered. Returns at once; the database may be down. */
  start(): void {
    this.kick(true);
  }

  // ---- Offering records (never waits) ----------------------------------------------------------------

  /** A job that has ended. False: the buffer is full; offer it again later (see `refused`). */
  enqueueJob(job: ArchivedJob, at?: LogPosition): boolean {
    assertEnded(job); // in the caller's stack, not later in the loop
    return this.offer({ kind: 'job', job, at });
  }

  /** A task's metered usage. */
  enqueueUsage(usage: TaskUsage, at?: LogPosition): boolean {
    return this.offer({ kind: 'usage', usage, at });
  }

  /** Audit records, as chained. False if any was refused. */
  enqueueAudit(records: readonly AuditRecord[]): boolean {
    let all = true;
    for (const record of records) all = this.offer({ kind: 'audit', record }) && all;
    return all;
  }

  /**
   * Every record of `log` up to `seq` that needs archiving has been offered (accepted or refused): from here
   * `archivedThrough(log)` may pass `seq` once those are written.
   */
  markApplied(log: string, seq: number): void {
    this.watermarks.markApplied(log, seq);
    // The watermark may move without a record to write (an idle pool): the loop stores it.
    this.kick(false);
  }

  private offer(record: ArchiveRecord): boolean {
    if (this.closed) throw new Error('the archive writer is closed');
    const id = `${record.kind}:${recordKey(record)}`;
    const at = record.kind === 'audit' ? undefined : record.at;
    if (this.buffered.has(id)) {
      if (at) this.watermarks.accepted(at, false);
      return true;
    }
    if (this.bufferedRecords() >= this.maxBuffered) {
      if (at) this.watermarks.refusedAt(at);
      this.hooks.refused!(record.kind);
      return false;
    }
    if (at) this.watermarks.accepted(at, true);
    this.buffered.add(id);
    this.queue.push({ record, id, enqueuedAtMs: this.now(), ordinal: this.nextOrdinal++ });
    this.kick(false);
    return true;
  }

  // ---- What the caller may ask ---------------------------------------------------------------------

  /** Age of the oldest record not yet written, in seconds; 0 when everything is written. */
  lagSeconds(): number {
    const oldest = Math.min(this.queue[this.head]?.enqueuedAtMs ?? Infinity, this.parked[0]?.enqueuedAtMs ?? Infinity);
    return oldest === Infinity ? 0 : Math.max(0, this.now() - oldest) / 1000;
  }

  /** Records buffered: waiting, being written, or set aside. */
  bufferedRecords(): number {
    return this.queue.length - this.head + this.parked.length;
  }

  /** Whether the buffer is full, so that `enqueue*` refuses. */
  isSaturated(): boolean {
    return this.bufferedRecords() >= this.maxBuffered;
  }

  /** Records the database refused for their data (never written; they hold the watermarks). */
  parkedRecords(): number {
    return this.parked.length;
  }

  /** Whether the last attempt to reach the database worked (undefined before the first). */
  isAvailable(): boolean | undefined {
    return this.available;
  }

  /**
   * The highest position of `log` such that every record from positions up to it is in the archive:
   * offered (`markApplied`) and written, none refused or set aside. Compaction of the log may go up to here.
   */
  archivedThrough(log: string): number {
    return this.watermarks.through(log);
  }

  /** The highest audit sequence number such that records 1..n are all in the archive. */
  archivedAuditSeq(): number {
    return this.auditThrough;
  }

  /** Resolves true once every record accepted before the call is written, false after `timeoutMs` or on close. */
  flush(timeoutMs = Infinity): Promise<boolean> {
    const ordinal = this.nextOrdinal - 1;
    if (this.isWrittenThrough(ordinal)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = timeoutMs === Infinity ? undefined : setTimeout(() => done(false), timeoutMs);
      const done = (written: boolean) => {
        clearTimeout(timer);
        this.flushWaiters = this.flushWaiters.filter((w) => w !== waiter);
        resolve(written);
      };
      const waiter = { ordinal, resolve: done };
      this.flushWaiters.push(waiter);
    });
  }

  /** Tries to write what is buffered for up to `drainTimeoutMs`, then stops. Resolves whether everything was written. */
  async close(drainTimeoutMs = 5_000): Promise<boolean> {
    if (this.closed) return this.bufferedRecords() === 0;
    const drained = await this.flush(drainTimeoutMs);
    this.closed = true;
    clearTimeout(this.lingerTimer);
    this.sleeping?.wake();
    for (const w of [...this.flushWaiters]) w.resolve(false);
    await this.loop;
    return drained;
  }

  // ---- The loop ------------------------------------------------------------------------------------

  /** Starts the loop now when a batch is full (or `now`), else after the linger time. */
  private kick(now: boolean): void {
    if (this.running || this.closed) return;
    if (now || this.queue.length - this.head >= this.maxBatch) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
      this.running = true;
      this.loop = this.run().finally(() => {
        this.running = false;
        if (!this.closed && (this.queue.length > this.head || this.watermarks.behind().length > 0)) this.kick(false);
      });
    } else if (!this.lingerTimer) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        this.kick(true);
      }, this.lingerMs);
    }
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const batch = this.queue.slice(this.head, this.head + this.maxBatch);
      if (batch.length === 0 && this.prepared && this.watermarks.behind().length === 0) return;
      try {
        if (!this.prepared) await this.prepare();
        if (batch.length > 0) {
          try {
            await this.writeBatch(batch);
          } catch (err) {
            if (!isRefused(err)) throw err;
            await this.isolate(batch);
          }
        }
        await this.persistWatermarks();
        this.reachable(true);
      } catch (err) {
        this.reachable(false, err as Error);
        await this.sleep(this.retryMs);
        this.retryMs = Math.min(this.retryMaxMs, this.retryMs * 2);
      }
    }
  }

  /** Runs the migrations and learns how far the archive already is. */
  private async prepare(): Promise<void> {
    const result = await migrate(this.db);
    if (result.applied.length > 0) this.options.log?.info({ applied: result.applied, version: result.version }, 'archive schema migrated');
    for (const [log, seq] of await readWatermarks(this.db)) this.watermarks.noteStored(log, seq);
    this.advanceAudit(await archivedAuditPrefix(this.db));
    this.prepared = true;
  }

  /** Writes a batch from the head of the queue in one transaction, then takes it off the queue. */
  private async writeBatch(batch: Entry[]): Promise<void> {
    const started = performance.now();
    const rows: Record<ArchiveRecordKind, unknown[][]> = { job: [], usage: [], audit: [] };
    try {
      for (const { record: r } of batch) {
        if (r.kind === 'job') rows.job.push(jobRow(r.job));
        else if (r.kind === 'usage') rows.usage.push(...usageRows(r.usage));
        else rows.audit.push(auditRow(r.record));
      }
    } catch (err) {
      // A record that cannot even become a row: no retry would help, so it is treated as the database refusing it.
      throw new UnwritableRecord((err as Error).message, { cause: err });
    }
    const insertedRows: Record<ArchiveRecordKind, number> = { job: 0, usage: 0, audit: 0 };
    await withConnection(
      this.db,
      async (client) => {
        try {
          await client.query('BEGIN');
          for (const kind of ['job', 'usage', 'audit'] as const) {
            if (rows[kind].length === 0) continue;
            const columns = TABLES[kind].columns.map((_, i) => rows[kind].map((row) => row[i]));
            insertedRows[kind] = (await client.query(INSERT_SQL[kind], columns)).rowCount ?? 0;
          }
          failpoint(FAILPOINTS.archiveBatchInserted);
          await client.query('COMMIT');
          failpoint(FAILPOINTS.archiveBatchCommitted);
        } catch (err) {
          if (isRowError(err)) await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      },
      isRowError,
    );
    this.settle(batch);
    this.hooks.written!({ records: batch.map((e) => e.record), insertedRows, seconds: (performance.now() - started) / 1000 });
  }

  /** A batch the database refused for its data: each record alone, setting aside those it refuses. */
  private async isolate(batch: Entry[]): Promise<void> {
    for (const entry of batch) {
      try {
        await this.writeBatch([entry]);
      } catch (err) {
        if (!isRefused(err)) throw err;
        this.options.log?.error({ err: (err as Error).message, record: entry.id }, 'the archive refuses a record; it is kept in memory and holds back compaction');
        this.hooks.failed!(err as Error, false);
        this.head++;
        this.parked.push(entry);
        this.compact();
      }
    }
  }

  /** Takes written entries (the head of the queue) off it, and moves the watermarks. */
  private settle(batch: Entry[]): void {
    for (const entry of batch) {
      this.head++;
      this.buffered.delete(entry.id);
      const r = entry.record;
      if (r.kind === 'audit') {
        if (r.record.seq > this.auditThrough) this.auditAbove.add(r.record.seq);
      } else if (r.at) this.watermarks.written(r.at);
    }
    this.advanceAudit(this.auditThrough);
    this.compact();
    for (const w of this.flushWaiters.filter((w) => this.isWrittenThrough(w.ordinal))) w.resolve(true);
  }

  private advanceAudit(contiguous: number): void {
    this.auditThrough = Math.max(this.auditThrough, contiguous);
    for (const seq of this.auditAbove) if (seq <= this.auditThrough) this.auditAbove.delete(seq);
    while (this.auditAbove.delete(this.auditThrough + 1)) this.auditThrough++;
  }

  /** Drops the written head of the queue once it is a large part of the array (amortised O(1) per record). */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private isWrittenThrough(ordinal: number): boolean {
    return (this.queue[this.head]?.ordinal ?? Infinity) > ordinal && this.parked.every((e) => e.ordinal > ordinal);
  }

  /** Stores the watermarks that moved, so a restarted scheduler, another replica or an operator knows them too. */
  private async persistWatermarks(): Promise<void> {
    const behind = this.watermarks.behind();
    if (behind.length === 0) return;
    await storeWatermarks(this.db, behind);
    for (const [log, seq] of behind) this.watermarks.noteStored(log, seq);
  }

  private reachable(ok: boolean, err?: Error): void {
    if (ok) {
      if (this.available === false) this.options.log?.info({ buffered: this.bufferedRecords() }, 'archive database reachable again; catching up');
      this.retryMs = this.retryInitialMs;
    } else {
      if (this.available !== false) this.options.log?.warn({ err: err?.message, buffered: this.bufferedRecords() }, 'archive database unavailable; buffering and retrying');
      this.hooks.failed!(err!, true);
    }
    this.available = ok;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeping = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms * (0.8 + Math.random() * 0.4));
      this.sleeping = { timer, wake };
    });
  }
}
