import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { GENESIS_HASH, STREAMS, auditRecordSchema, hashRecord, subjects, type AuditEntry, type AuditRecord } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { isNotFound } from './nats';
import { JetStreamPublisher } from './js-publisher';

// The record, its hash and the chain rule are wire facts: `qy audit verify` checks the chain it fetches.
export { CHAIN_START, GENESIS_HASH, auditActorSchema, auditRecordSchema, canonicalJson, hashRecord, verifyChain, type AuditActor, type AuditEntry, type AuditRecord, type ChainPoint, type ChainVerdict } from '../protocol';

/** Records appended in one turn of the event loop travel as one JetStream message. */
const blockSchema = z.object({ records: z.array(auditRecordSchema).min(1) });

/** Blocks of audit records as they are stored, until closed (`AuditLog.follow`). */
export interface AuditFollower {
  blocks: AsyncIterable<AuditRecord[]>;
  close(): Promise<void>;
}

/**
 * The tamper-evident audit log: hash-chained records in the QY_AUDIT stream. Records appended in the same
 * turn of the event loop are stored as one message, so auditing every submission adds one write per turn,
 * not one per request. Several scheduler replicas may append (pools with different leaders; any replica
 * audits refused requests): each write expects the chain's last message to be the one this replica knows,
 * and on a conflict it reads the new end, chains its records after it and writes again. A record is in the
 * chain once its append resolves; a failed append leaves no gap.
 */
export class AuditLog {
  private seq = 0;
  private prevHash = GENESIS_HASH;
  /** Stream sequence of the chain's last message (0: none), the precondition of the next write. */
  private lastMessageSeq = 0;
  private queued: { entry: AuditEntry; atMs: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushing = false;
  private readonly js: JetStreamClient;
  private jsm: Promise<JetStreamManager> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Stores the blocks (the scheduler's hot-path publisher: no timer and no Error per write). */
    private readonly publisher: JetStreamPublisher = new JetStreamPublisher(nc),
  ) {
    this.js = jetstream(nc);
  }

  /** Finds where the chain stands: the last stored record. */
  async init(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    try {
      const msg = await jsm.streams.getMessage(STREAMS.audit, { last_by_subj: subjects.audit });
      const block = msg ? blockSchema.parse(msg.json()) : undefined;
      const last = block?.records[block.records.length - 1];
      this.seq = last?.seq ?? 0;
      this.prevHash = last?.hash ?? GENESIS_HASH;
      this.lastMessageSeq = msg?.seq ?? 0;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.seq = 0;
      this.prevHash = GENESIS_HASH;
      this.lastMessageSeq = 0;
    }
  }

  /** Appends a record; resolves when it is stored in the chain. */
  append(entry: AuditEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.queued.push({ entry, atMs: this.now(), resolve, reject }) === 1 && !this.flushing) setImmediate(() => void this.flush());
    });
  }

  /** Writes what is queued, one message at a time, each chained after the last one stored. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queued.length > 0) {
        const batch = this.queued.splice(0);
        try {
          await this.write(batch);
          for (const q of batch) q.resolve();
        } catch (err) {
          this.log.error({ err: (err as Error).message, records: batch.length }, 'audit records not stored');
          for (const q of batch) q.reject(err as Error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async write(batch: { entry: AuditEntry; atMs: number }[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let seq = this.seq;
      let prevHash = this.prevHash;
      const records = batch.map(({ entry, atMs }) => {
        const base = { ...entry, seq: ++seq, atMs, prevHash };
        const record: AuditRecord = { ...base, hash: hashRecord(base) };
        prevHash = record.hash;
        return record;
      });
      try {
        const ack = await this.publisher.publish(subjects.audit, JSON.stringify({ records }), { expectLastSubjectSequence: this.lastMessageSeq });
        this.seq = seq;
        this.prevHash = prevHash;
        this.lastMessageSeq = ack.seq;
        return;
      } catch (err) {
        // Another replica wrote first: chain after its records.
        if (attempt >= 20 || !/wrong last sequence/i.test((err as Error).message)) throw err;
        await this.init();
      }
    }
  }

  /**
   * Records in order, filtered, from sequence `afterSeq` on, as the stream holds them (for the operators'
   * API). The read starts at the first message holding a record past `afterSeq`, so paging does not read the
   * stream from its start each time.
   */
  async list(filter: { afterSeq?: number; limit: number; actor?: string; action?: string; target?: string; sinceMs?: number }): Promise<AuditRecord[]> {
    const jsm = await this.manager();
    const info = await jsm.streams.info(STREAMS.audit);
    if (info.state.messages === 0) return [];
    const startSeq = await this.streamSeqAfter(filter.afterSeq ?? 0, info.state.first_seq, info.state.last_seq);
    if (startSeq > info.state.last_seq) return [];
    const consumer = await this.js.consumers.get(STREAMS.audit, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq });
    const messages = await consumer.consume({ max_messages: 500 });
    const out: AuditRecord[] = [];
    try {
      for await (const msg of messages) {
        const block = blockSchema.safeParse(msg.json());
        if (block.success) {
          for (const r of block.data.records) {
            if (filter.afterSeq !== undefined && r.seq <= filter.afterSeq) continue;
            if (filter.actor && r.actor.name !== filter.actor) continue;
            if (filter.action && r.action !== filter.action) continue;
            if (filter.target && r.target !== filter.target) continue;
            if (filter.sinceMs !== undefined && r.atMs < filter.sinceMs) continue;
            if (out.length < filter.limit) out.push(r);
          }
        }
        if (out.length >= filter.limit || msg.seq >= info.state.last_seq) break;
      }
    } finally {
      await messages.close();
    }
    return out;
  }

  /**
   * The sequence number of the first record the stream still holds (undefined when it holds none). Below it,
   * records are only in the accounting archive once the stream is compacted.
   */
  async firstSeq(): Promise<number | undefined> {
    const jsm = await this.manager();
    const info = await jsm.streams.info(STREAMS.audit);
    if (info.state.messages === 0) return undefined;
    return (await this.recordsAt(info.state.first_seq))?.[0].seq;
  }

  /**
   * Follows the stream from the first record after `afterSeq`: blocks of records (those up to `afterSeq`
   * left out) as they are stored, until `close`. A consumer that stops pulling holds the stream back, not
   * memory: the next blocks wait in JetStream.
   */
  async follow(afterSeq: number): Promise<AuditFollower> {
    const jsm = await this.manager();
    const info = await jsm.streams.info(STREAMS.audit);
    const startSeq = info.state.messages === 0 ? info.state.last_seq + 1 : await this.streamSeqAfter(afterSeq, info.state.first_seq, info.state.last_seq);
    const consumer = await this.js.consumers.get(STREAMS.audit, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq });
    const messages = await consumer.consume({ max_messages: 100 });
    const log = this.log;
    async function* blocks(): AsyncGenerator<AuditRecord[]> {
      for await (const msg of messages) {
        const block = blockSchema.safeParse(msg.json());
        if (!block.success) {
          log.warn({ streamSeq: msg.seq }, 'unreadable message in the audit stream skipped');
          continue;
        }
        const records = block.data.records.filter((r) => r.seq > afterSeq);
        if (records.length > 0) yield records;
      }
    }
    return { blocks: blocks(), close: () => messages.close().then(() => undefined) };
  }

  /**
   * Removes the messages whose records all come at or before `recordSeq` (they are in the accounting
   * archive). The last message always stays: a restarted writer reads the chain's head from it.
   */
  async compactThrough(recordSeq: number): Promise<number> {
    const jsm = await this.manager();
    const info = await jsm.streams.info(STREAMS.audit);
    if (info.state.messages === 0) return 0;
    const keepFrom = Math.min(await this.streamSeqAfter(recordSeq, info.state.first_seq, info.state.last_seq), info.state.last_seq);
    if (keepFrom <= info.state.first_seq) return 0;
    return (await jsm.streams.purge(STREAMS.audit, { seq: keepFrom })).purged;
  }

  /**
   * The stream sequence of the first message holding a record after `afterSeq` (`lastSeq + 1` when none
   * does), by binary search: records are chained in stream order, so their numbers grow with it. A message
   * that cannot be read sends the search back to the stream's start, which is always correct, only slower.
   */
  private async streamSeqAfter(afterSeq: number, firstSeq: number, lastSeq: number): Promise<number> {
    if (afterSeq <= 0) return firstSeq;
    let lo = firstSeq;
    let hi = lastSeq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const records = await this.recordsAt(mid);
      if (!records) return firstSeq;
      if (records[records.length - 1].seq > afterSeq) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** One JetStream manager for the reads (making one asks the server for its API each time). */
  private manager(): Promise<JetStreamManager> {
    this.jsm ??= jetstreamManager(this.nc).catch((err: unknown) => {
      this.jsm = undefined; // not kept: the next read asks again
      throw err;
    });
    return this.jsm;
  }

  /** The records of the message at a stream sequence; undefined when it is gone or unreadable. */
  private async recordsAt(streamSeq: number): Promise<AuditRecord[] | undefined> {
    const jsm = await this.manager();
    try {
      const msg = await jsm.streams.getMessage(STREAMS.audit, { seq: streamSeq });
      const block = msg ? blockSchema.safeParse(msg.json()) : undefined;
      return block?.success ? block.data.records : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
