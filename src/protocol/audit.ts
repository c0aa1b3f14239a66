import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * The audit log's records (stream QY_AUDIT, `GET /v1/audit`) and the rule that chains them: each record's
 * hash covers the previous hash and its own content, so anyone holding the records (the scheduler, the
 * archive, `qy audit verify`) can check that none was altered or removed.
 */

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
  /** What was done: job.submit, job.cancel, node.cordon, node.uncordon, node.drain, node.remove, node.forget, tenant.quota, tenants.reload, auth.failed, auth.forbidden. */
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

/** The hash before the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level: the same record always hashes the same. */
export function canonicalJson(value: unknown): string {
  // Built by concatenation rather than entries, filter, map and join: every audited action is hashed over
  // this text on the submission path. The output must never change, or stored chains would no longer verify.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + (canonicalJson(value[i]) ?? '');
    return `${out}]`;
  }
  if (value && typeof value === 'object') {
    // Sorted by UTF-16 code units, as the default sort does for strings.
    const keys = Object.keys(value).sort();
    let out = '{';
    for (const k of keys) {
      const v = (value as Record<string, unknown>)[k];
      if (v === undefined) continue;
      out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${canonicalJson(v)}`;
    }
    return `${out}}`;
  }
  return JSON.stringify(value);
}

/** The hash of a record: SHA-256 over the previous hash and the record without its own hash. */
export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(record)).digest('hex');
}

/** What a chain verification found. */
export type ChainVerdict = { ok: true; records: number; lastSeq: number; lastHash: string } | { ok: false; seq: number; problem: string };

/** A point of the chain: the last record verified (seq 0 and the genesis hash before the first). */
export interface ChainPoint {
  seq: number;
  hash: string;
}
export const CHAIN_START: ChainPoint = { seq: 0, hash: GENESIS_HASH };

/**
 * Checks a run of records from the first, or from a point already verified (the archived prefix, a
 * previous page): sequence numbers without gaps, each record's hash over its content, each `prevHash`
 * equal to the hash before it. Names the first record that is missing or altered.
 */
export function verifyChain(records: readonly AuditRecord[], from: ChainPoint = CHAIN_START): ChainVerdict {
  let prev = from.hash;
  let expectSeq = from.seq + 1;
  for (const r of records) {
    if (r.seq !== expectSeq) return { ok: false, seq: expectSeq, problem: r.seq > expectSeq ? `record ${expectSeq} is missing` : `record ${r.seq} is out of order` };
    const { hash, ...rest } = r;
    if (hashRecord(rest) !== hash) return { ok: false, seq: r.seq, problem: `record ${r.seq} was altered (its hash does not match its content)` };
    if (r.prevHash !== prev) return { ok: false, seq: r.seq, problem: `record ${r.seq} does not follow record ${r.seq - 1} (a record before it was altered or replaced)` };
    prev = hash;
    expectSeq++;
  }
  return { ok: true, records: records.length, lastSeq: expectSeq - 1, lastHash: prev };
}

