import { createHash } from 'node:crypto';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { STREAMS, subjects } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { isNotFound } from './nats';

/** Who did something. */
export const auditActorSchema = z.object({
  kind: z.enum(['tenant', 'operator', 'anonymous', 'system']),
  name: z.string(),
  /** The operator (a bridge such as the Kubernetes one) that acted for this tenant. */
  via: z.string().optional(),
});
export type AuditActor = z.infer<typeof auditActorSchema>;

/** One audited action. `hash` is the SHA-256 of `prevHash` and the record's other fields, so the records form a chain. */
export const auditRecordSchema = z.object({
  seq: z.number().int().min(1),
  atMs: z.number().int(),
  actor: auditActorSchema,
  /** What was done: job.submit, job.cancel, node.cordon, node.uncordon, node.drain, tenant.quota, auth.failed, auth.forbidden. */
  action: z.string(),
  /** What it was done to: a job id, a node id, a tenant. */
  target: z.string().optional(),
  outcome: z.enum(['ok', 'denied', 'failed']),
  details: z.record(z.string(), z.unknown()).optional(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditRecord = z.infer<typeof auditRecordSchema>;
export type AuditEntry = Omit<AuditRecord, 'seq' | 'atMs' | 'prevHash' | 'hash'>;

/** Records appended in one turn of the event loop travel as one JetStream message. */
const blockSchema = z.object({ records: z.array(auditRecordSchema).min(1) });

/** The hash before the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level: the same record always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash of a record: SHA-256 over the previous hash and the record without its own hash. */
export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(record)).digest('hex');
}

/** What a chain verification found. */
export type ChainVerdict = { ok: true; records: number; lastHash: string } | { ok: false; seq: number; problem: string };

/**
 * Checks a run of records from the first: sequence numbers without gaps, each record's hash over its content,
 * each `prevHash` equal to the hash before it. Names the first record that is missing or altered.
 */
export function verifyChain(records: readonly AuditRecord[]): ChainVerdict {
  let prev = GENESIS_HASH;
  let expectSeq = 1;
  for (const r of records) {
    if (r.seq !== expectSeq) return { ok: false, seq: expectSeq, problem: r.seq > expectSeq ? `record ${expectSeq} is missing` : `record ${r.seq} is out of order` };
    const { hash, ...rest } = r;
    if (hashRecord(rest) !== hash) return { ok: false, seq: r.seq, problem: `record ${r.seq} was altered (its hash does not match its content)` };
    if (r.prevHash !== prev) return { ok: false, seq: r.seq, problem: `record ${r.seq} does not follow record ${r.seq - 1} (a record before it was altered or replaced)` };
    prev = hash;
    expectSeq++;
  }
  return { ok: true, records: records.length, lastHash: prev };
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

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
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
        const ack = await this.js.publish(subjects.audit, JSON.stringify({ records }), { expect: { lastSubjectSequence: this.lastMessageSeq } });
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

  /** Records in order, filtered, from sequence `afterSeq` on (reads the stream; for the operators' API). */
  async list(filter: { afterSeq?: number; limit: number; actor?: string; action?: string; target?: string; sinceMs?: number }): Promise<AuditRecord[]> {
    const jsm = await jetstreamManager(this.nc);
    const info = await jsm.streams.info(STREAMS.audit);
    if (info.state.messages === 0) return [];
    const consumer = await this.js.consumers.get(STREAMS.audit, { deliver_policy: DeliverPolicy.All });
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
}
