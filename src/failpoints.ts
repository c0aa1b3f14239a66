/**
 * Crash points for the kill tests, as TiKV's fail points or FoundationDB's buggify: with
 * `QY_FAILPOINTS=name[,name…]` the process kills itself with SIGKILL — as `kill -9` would, nothing flushed,
 * nothing closed — the first time it reaches one of the named points. Unset (always, in production), a point
 * costs a lookup in an empty set.
 */
export const FAILPOINTS = {
  /** A snapshot captured and encoded, not yet stored. */
  snapshotEncoded: 'snapshot-encoded',
  /** A snapshot stored, the log not yet compacted below it. */
  snapshotStored: 'snapshot-stored',
  /** The job log compacted, the audit stream not yet. */
  jobLogCompacted: 'job-log-compacted',
  /** An archive batch's rows inserted, the transaction not yet committed. */
  archiveBatchInserted: 'archive-batch-inserted',
  /** An archive batch committed, its records not yet marked archived (the watermark not moved). */
  archiveBatchCommitted: 'archive-batch-committed',
} as const;
export type Failpoint = (typeof FAILPOINTS)[keyof typeof FAILPOINTS];

const armed = new Set((process.env.QY_FAILPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean));

export function failpoint(name: Failpoint): void {
  if (armed.size === 0 || !armed.has(name)) return;
  process.stderr.write(`failpoint ${name}: killing this process (QY_FAILPOINTS)\n`);
  process.kill(process.pid, 'SIGKILL');
}
