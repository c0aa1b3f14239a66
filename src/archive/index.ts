/**
 * The accounting archive in PostgreSQL (the `slurmdbd` of this project): finished jobs, metered usage
 * segments and audit records, written in batches that never make the scheduler wait and never double a
 * row, and read back for history, bills, usage, disclosure and the audit chain.
 */
import type pg from 'pg';
import type { Logger } from '../telemetry/logger';
import { openArchiveDatabase, type ArchiveDatabaseOptions } from './database';
import { ArchiveReader } from './reader';
import { ArchiveWriter, type ArchiveWriterOptions } from './writer';

export * from './database';
export * from './history';
export * from './metrics';
export * from './migrations';
export * from './reader';
export * from './records';
export * from './writer';

/** The archive of one process: its connection pool, writer and reader. */
export interface Archive {
  db: pg.Pool;
  writer: ArchiveWriter;
  reader: ArchiveReader;
  /** Writes what it can within `drainTimeoutMs`, stops the writer and closes the pool. Resolves whether everything was written. */
  close(drainTimeoutMs?: number): Promise<boolean>;
}

/**
 * Opens the archive at `url` and starts the writer, which runs the migrations first. Returns at once, even
 * when the database is down: records are buffered until it answers.
 */
export function openArchive(options: { url: string; log?: Logger; database?: Omit<ArchiveDatabaseOptions, 'url'>; writer?: ArchiveWriterOptions }): Archive {
  const log = options.log;
  const db = openArchiveDatabase({ url: options.url, onIdleError: (err) => log?.debug({ err: err.message }, 'archive database dropped an idle connection'), ...options.database });
  const writer = new ArchiveWriter(db, { log, ...options.writer });
  writer.start();
  return {
    db,
    writer,
    reader: new ArchiveReader(db),
    async close(drainTimeoutMs = 5_000) {
      const drained = await writer.close(drainTimeoutMs);
      await db.end();
      return drained;
    },
  };
}
