import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, canonicalJson, hashRecord, verifyChain, type AuditRecord } from '../../src/store/audit-log';

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const base = { seq, atMs: 1_000 + seq, actor: { kind: 'tenant' as const, name: 'beijing' }, action: 'job.submit', target: `j${seq}`, outcome: 'ok' as const, prevHash: prev };
    const record = { ...base, hash: hashRecord(base) };
    out.push(record);
    prev = record.hash;
  }
  return out;
}

describe('the audit hash chain', () => {
  test('an intact chain verifies', () => {
    const records = chain(5);
    expect(verifyChain(records)).toEqual({ ok: true, records: 5, lastSeq: 5, lastHash: records[4].hash });
  });

  test('an altered record is named', () => {
    const records = chain(5);
    records[2] = { ...records[2], target: 'someone-else' };
    expect(verifyChain(records)).toEqual({ ok: false, seq: 3, problem: 'record 3 was altered (its hash does not match its content)' });
  });

  test('a record re-hashed after altering breaks the link to the next one', () => {
    const records = chain(5);
    const { hash: _old, ...rest } = { ...records[1], outcome: 'denied' as const };
    records[1] = { ...rest, hash: hashRecord(rest) };
    expect(verifyChain(records)).toEqual({ ok: false, seq: 3, problem: 'record 3 does not follow record 2 (a record before it was altered or replaced)' });
  });

  test('a missing record is named', () => {
    const records = chain(5);
    records.splice(3, 1);
    expect(verifyChain(records)).toEqual({ ok: false, seq: 4, problem: 'record 4 is missing' });
  });

  test('a run continues from a verified point (an archived prefix, then the live tail)', () => {
    const records = chain(5);
    expect(verifyChain(records.slice(3), { seq: 3, hash: records[2].hash })).toEqual({ ok: true, records: 2, lastSeq: 5, lastHash: records[4].hash });
    expect(verifyChain(records.slice(3), { seq: 3, hash: records[1].hash })).toMatchObject({ ok: false, seq: 4 });
    expect(verifyChain(records.slice(4), { seq: 3, hash: records[2].hash })).toEqual({ ok: false, seq: 4, problem: 'record 4 is missing' });
  });

  test('canonical JSON does not depend on key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: undefined } })).toBe('{"a":{"d":[1,{"e":3,"f":2}]},"b":1}');
  });
});
