import type { Archive } from '../src/archive';
import { QY_ERR_ARCHIVE_UNAVAILABLE } from '../src/errors';
import { verifyChain, type AuditLog, type AuditRecord, type ChainVerdict } from '../src/store/audit-log';

/** Which audit records to list, oldest first (the filters of `GET /v1/audit`). */
export interface AuditListFilter {
  afterSeq?: number;
  limit: number;
  actor?: string;
  action?: string;
  target?: string;
  sinceMs?: number;
}

/** What the audit reads need: the live stream, and the archive when there is one. */
export interface AuditReadsDeps {
  readonly audit: Pick<AuditLog, 'list' | 'firstSeq'>;
  readonly archive: Archive | undefined;
}

/** A verification of the whole chain; `archivedRecords` is how much of it the archive held. */
export type AuditVerdict = ChainVerdict & { archivedRecords?: number };

/** Records read per page while reading the whole stream for a verification. */
const STREAM_PAGE = 10_000;

/**
 * The audit log as one chain: the archived prefix (PostgreSQL) and the live tail of QY_AUDIT, which is
 * compacted below what the archive holds. In the chain the archive comes first; in time the stream is read
 * first, because a record leaves the stream only once it is archived: read the other way round, a record
 * archived and compacted away between the two reads would be in neither. Without an archive, or while it is
 * down and the stream still holds what is asked, the stream alone answers.
 */
export class AuditReads {
  constructor(private readonly s: AuditReadsDeps) {}

  /** Records after `afterSeq` that the filter selects, oldest first, at most `limit`; each once. */
  async list(filter: AuditListFilter): Promise<AuditRecord[]> {
    const { archive, audit } = this.s;
    if (!archive) return audit.list(filter);
    try {
      return await this.merged(filter, archive);
    } catch (err) {
      if (!(err instanceof QY_ERR_ARCHIVE_UNAVAILABLE)) throw err;
      const first = await audit.firstSeq();
      if (first !== undefined && first <= (filter.afterSeq ?? 0) + 1) return audit.list(filter);
      throw err;
    }
  }

  /** The whole chain checked, from the first archived record through the end of the stream; names the first record missing or altered. */
  async verify(): Promise<AuditVerdict> {
    const tail: AuditRecord[] = [];
    for (;;) {
      const page = await this.s.audit.list({ afterSeq: tail[tail.length - 1]?.seq, limit: STREAM_PAGE });
      tail.push(...page);
      if (page.length < STREAM_PAGE) break;
    }
    if (!this.s.archive) return verifyChain(tail);
    try {
      return await this.s.archive.reader.verifyAudit(tail);
    } catch (err) {
      // The stream from record 1 is the whole chain: it can be checked without the archive.
      if (err instanceof QY_ERR_ARCHIVE_UNAVAILABLE && tail[0]?.seq === 1) return verifyChain(tail);
      throw err;
    }
  }

  private async merged(filter: AuditListFilter, archive: Archive): Promise<AuditRecord[]> {
    const afterSeq = filter.afterSeq ?? 0;
    // Records 1..prefix are all in the archive and stay there (a lower bound: this replica's writer may lag
    // another's). A page that ends within them needs nothing from the stream.
    const prefix = archive.writer.archivedAuditSeq();
    let head: AuditRecord[] = [];
    if (prefix > afterSeq) {
      head = await archive.reader.auditRecords({ ...filter, throughSeq: prefix });
      if (head.length >= filter.limit) return head;
    }
    // Past the prefix a record is in the stream, the archive, or both: the stream first (see the class).
    const from = Math.max(afterSeq, prefix);
    const live = await this.s.audit.list({ ...filter, afterSeq: from });
    const archived = await archive.reader.auditRecords({ ...filter, afterSeq: from });
    return mergeBySeq([head, archived, live], filter.limit);
  }
}

/** Runs of records, each in order, as one run: each sequence number once (the first run's copy), the first `limit`. */
function mergeBySeq(runs: readonly (readonly AuditRecord[])[], limit: number): AuditRecord[] {
  const bySeq = new Map<number, AuditRecord>();
  for (const run of runs) for (const r of run) if (!bySeq.has(r.seq)) bySeq.set(r.seq, r);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
}
