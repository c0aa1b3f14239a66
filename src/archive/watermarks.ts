import type pg from 'pg';
import { MinHeap } from '../core/min-heap';
import type { LogPosition } from './records';

/** How far each log is archived, as stored by the writers (`archive_watermarks`). */
export async function readWatermarks(db: pg.Pool): Promise<Map<string, number>> {
  const { rows } = await db.query<{ log: string; through_seq: number }>('SELECT log, through_seq FROM archive_watermarks');
  return new Map(rows.map((r) => [r.log, r.through_seq]));
}

/**
 * The highest audit sequence number n such that records 1..n are all archived: the prefix of the chain the
 * archive can vouch for (0 when record 1 is missing). One index scan when there is no gap.
 */
export async function archivedAuditPrefix(db: pg.Pool): Promise<number> {
  const { rows } = await db.query<{ min: number | null; max: number | null; n: number }>('SELECT min(seq) AS min, max(seq) AS max, count(*) AS n FROM archived_audit');
  const { min, max, n } = rows[0];
  if (min !== 1 || max === null) return 0;
  if (n === max) return max;
  const gap = await db.query<{ seq: number }>('SELECT a.seq FROM archived_audit a WHERE NOT EXISTS (SELECT 1 FROM archived_audit b WHERE b.seq = a.seq + 1) ORDER BY a.seq LIMIT 1');
  return gap.rows[0].seq;
}

/** Positions of buffered records of one log: a count per position, and a heap for the smallest (stale entries skipped). */
interface Buffered {
  counts: Map<number, number>;
  heap: MinHeap<null>;
}

/**
 * How far each log is archived, from what the writer was told and has written: the highest position
 * such that every record from positions up to it was offered (`markApplied`), and none is still
 * buffered or was refused. The database's stored watermark is a floor: what it vouches for stays true.
 */
export class LogWatermarks {
  private readonly buffered = new Map<string, Buffered>();
  private readonly applied = new Map<string, number>();
  private readonly refused = new Map<string, Set<number>>();
  private readonly stored = new Map<string, number>();

  markApplied(log: string, seq: number): void {
    if (seq > (this.applied.get(log) ?? 0)) this.applied.set(log, seq);
  }

  /** A record at `at` was buffered (or was already): it no longer counts as refused. */
  accepted(at: LogPosition, isNew: boolean): void {
    this.refused.get(at.log)?.delete(at.seq);
    if (!isNew) return;
    let b = this.buffered.get(at.log);
    if (!b) this.buffered.set(at.log, (b = { counts: new Map(), heap: new MinHeap<null>() }));
    b.counts.set(at.seq, (b.counts.get(at.seq) ?? 0) + 1);
    b.heap.push(at.seq, null);
  }

  /** A record at `at` was refused (buffer full): the log is not archived past it until it is accepted. */
  refusedAt(at: LogPosition): void {
    let s = this.refused.get(at.log);
    if (!s) this.refused.set(at.log, (s = new Set()));
    s.add(at.seq);
  }

  written(at: LogPosition): void {
    const counts = this.buffered.get(at.log)!.counts;
    const n = counts.get(at.seq)! - 1;
    if (n === 0) counts.delete(at.seq);
    else counts.set(at.seq, n);
  }

  /** What the database holds for a log (read at start, or just stored). */
  noteStored(log: string, seq: number): void {
    if (seq > (this.stored.get(log) ?? 0)) this.stored.set(log, seq);
  }

  through(log: string): number {
    let through = this.applied.get(log) ?? 0;
    const pending = this.minBuffered(log);
    if (pending !== undefined) through = Math.min(through, pending - 1);
    for (const seq of this.refused.get(log) ?? []) through = Math.min(through, seq - 1);
    return Math.max(this.stored.get(log) ?? 0, through);
  }

  /** Logs whose watermark moved past what the database holds, with the new value. */
  behind(): [string, number][] {
    const out: [string, number][] = [];
    for (const log of new Set([...this.applied.keys(), ...this.buffered.keys()])) {
      const through = this.through(log);
      if (through > (this.stored.get(log) ?? 0)) out.push([log, through]);
    }
    return out;
  }

  private minBuffered(log: string): number | undefined {
    const b = this.buffered.get(log);
    if (!b) return undefined;
    while (b.heap.size > 0 && !b.counts.has(b.heap.peekKey())) b.heap.pop();
    return b.heap.size > 0 ? b.heap.peekKey() : undefined;
  }
}

/** Stores watermarks that moved; never lowers one (two writers may store the same log). */
export async function storeWatermarks(db: pg.Pool, marks: readonly [string, number][]): Promise<void> {
  await db.query(
    `INSERT INTO archive_watermarks (log, through_seq) SELECT * FROM unnest($1::text[], $2::int8[])
     ON CONFLICT (log) DO UPDATE SET through_seq = GREATEST(archive_watermarks.through_seq, EXCLUDED.through_seq), updated_at = now()`,
    [marks.map(([log]) => log), marks.map(([, seq]) => seq)],
  );
}
