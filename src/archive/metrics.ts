import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ArchiveWriterHooks } from './writer';

/** What the archive metrics read at scrape time. */
export interface ArchiveStatus {
  lagSeconds(): number;
  bufferedRecords(): number;
  parkedRecords(): number;
  isAvailable(): boolean | undefined;
}

/** From a millisecond to a minute: a batch normally takes milliseconds, a struggling database seconds. */
const BATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The archive's metrics on the scheduler's registry: `qy_archive_lag_seconds` (alerted on) and the rest,
 * computed from the writer at scrape time or counted through its hooks. Made only when there is an archive
 * (QY_DATABASE_URL): `status` is a getter because the writer is built with these hooks.
 */
export class ArchiveMetrics {
  readonly hooks: ArchiveWriterHooks;

  constructor(registry: Registry, status: () => ArchiveStatus) {
    const registers = [registry];
    const gauge = (name: string, help: string, value: (s: ArchiveStatus) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value(status()));
        },
      });
    gauge('qy_archive_lag_seconds', 'Age of the oldest record (finished job, metered usage, audit record) not yet written to the accounting archive; 0 when it is caught up.', (s) => s.lagSeconds());
    gauge('qy_archive_buffered_records', 'Records waiting in memory to be written to the accounting archive.', (s) => s.bufferedRecords());
    gauge('qy_archive_parked_records', 'Records the archive database refused for their data: kept in memory, holding back compaction.', (s) => s.parkedRecords());
    gauge('qy_archive_up', 'Whether the last attempt to write to the archive database worked (1) or not (0).', (s) => (s.isAvailable() === false ? 0 : 1));
    const rows = new Counter({ name: 'qy_archive_rows_written_total', help: 'Rows new to the accounting archive, by table (rows already there are not counted).', labelNames: ['table'], registers });
    const refused = new Counter({ name: 'qy_archive_records_refused_total', help: 'Records refused because the archive buffer was full (the caller offers them again).', labelNames: ['kind'], registers });
    const errors = new Counter({ name: 'qy_archive_write_errors_total', help: 'Failed archive writes: database unavailable (retried) or data refused (record set aside).', labelNames: ['cause'], registers });
    const batches = new Histogram({ name: 'qy_archive_batch_duration_seconds', help: 'Time to write one batch to the archive, in one transaction.', buckets: BATCH_BUCKETS, registers });
    for (const table of ['job', 'usage', 'audit']) rows.inc({ table }, 0);
    this.hooks = {
      written({ insertedRows, seconds }) {
        for (const [table, n] of Object.entries(insertedRows)) if (n > 0) rows.inc({ table }, n);
        batches.observe(seconds);
      },
      failed(_err, willRetry) {
        errors.inc({ cause: willRetry ? 'unavailable' : 'data_refused' });
      },
      refused(kind) {
        refused.inc({ kind });
      },
    };
  }
}
