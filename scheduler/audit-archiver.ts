import type { ArchiveWriter } from '../src/archive';
import type { AuditFollower, AuditLog } from '../src/store/audit-log';
import type { Logger } from '../src/telemetry/logger';

/** What the audit archiver reads and feeds. */
export interface AuditArchiverDeps {
  audit: Pick<AuditLog, 'follow'>;
  writer: Pick<ArchiveWriter, 'archivedAuditSeq' | 'enqueueAudit' | 'isAvailable'>;
  log: Logger;
  /** The wait before trying again: while the writer has not reached the database yet, while its buffer is full, after a failed read of the stream. Default 1 s. */
  retryMs?: number;
}

/**
 * Feeds the audit chain to the accounting archive: follows QY_AUDIT from what the archive already holds
 * (`writer.archivedAuditSeq()`) and offers every record, in order, to the archive writer, which stores each
 * once under its sequence number. It never buffers more than the writer takes: when the writer refuses (its
 * buffer is full because PostgreSQL is down), it stops pulling and the records wait in the stream, which is
 * not compacted past `archivedAuditSeq()`.
 *
 * One replica runs it; a second one would only offer the same rows again, which the archive keeps once.
 * The scheduler starts it once the audit log is initialised (see `start`).
 */
export class AuditArchiver {
  private offered = 0;
  private follower: AuditFollower | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly retryMs: number;

  constructor(private readonly deps: AuditArchiverDeps) {
    this.retryMs = deps.retryMs ?? 1_000;
  }

  /** Makes an archiver and starts it: `this.auditArchiver = this.archive && AuditArchiver.start({ audit: this.audit, writer: this.archive.writer, log })`. */
  static start(deps: AuditArchiverDeps): AuditArchiver {
    const archiver = new AuditArchiver(deps);
    archiver.start();
    return archiver;
  }

  /** Starts following in the background; returns at once. */
  start(): void {
    this.running ??= this.run();
  }

  /** Stops following; records offered stay with the writer (its `close` drains them). Stop it before closing the archive. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.follower?.close().catch(() => undefined);
    await this.running;
  }

  /** The highest audit sequence number offered to the writer (or found already archived) so far. */
  get offeredSeq(): number {
    return this.offered;
  }

  private async run(): Promise<void> {
    const { writer, log } = this.deps;
    while (!this.stopped) {
      try {
        // Until the writer has reached the database it does not know what the archive holds, and following
        // from 0 would offer the whole stream again.
        if (writer.isAvailable() !== true) {
          await this.sleep();
          continue;
        }
        this.offered = Math.max(this.offered, writer.archivedAuditSeq());
        this.follower = await this.deps.audit.follow(this.offered);
        if (this.stopped) return; // stopped while the follower was being made: `finally` closes it
        for await (const records of this.follower.blocks) {
          for (const record of records) {
            const known = Math.max(this.offered, writer.archivedAuditSeq());
            if (record.seq <= known) continue;
            if (record.seq > known + 1) log.error({ missing: `${known + 1}..${record.seq - 1}` }, 'audit records missing from QY_AUDIT: the archived chain cannot pass the gap');
            while (!writer.enqueueAudit([record])) {
              if (this.stopped) return;
              await this.sleep();
            }
            this.offered = record.seq;
          }
          if (this.stopped) return;
        }
      } catch (err) {
        if (this.stopped) return;
        log.warn({ err: (err as Error).message, offeredSeq: this.offered }, 'following the audit stream for the archive failed; trying again');
        await this.sleep();
      } finally {
        await this.follower?.close().catch(() => undefined);
        this.follower = undefined;
      }
    }
  }

  private sleep(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.retryMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
