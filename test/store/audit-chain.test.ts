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

  test('canonical JSON writes exactly what the first version wrote (stored chains must still verify)', () => {
    // The first version, kept here as the format's definition.
    const first = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(first).join(',')}]`;
      if (value && typeof value === 'object') {
        const entries = Object.entries(value as Record<string, unknown>)
          .filter(([, v]) => v !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${first(v)}`).join(',')}}`;
      }
      return JSON.stringify(value);
    };
    const values: unknown[] = [
      {},
      [],
      [undefined, null, 1, 'x'],
      { z: 1, Z: 2, _: 3, é: 4, a1: 5, a10: 6, a2: 7, '': 8, '\u{1F600}': 9, 'ü\n"q"': 10 },
      { a: undefined, b: { c: undefined } },
      { n: Number.NaN, i: Number.POSITIVE_INFINITY, neg: -0, big: 1e21, small: 1.5e-7, t: true, f: false, nil: null },
      { when: new Date(0), nested: [[{ b: [{}] }], { a: [undefined] }] },
    ];
    // And a few hundred generated ones, from a fixed seed.
    let seed = 7;
    const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const gen = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.3) return [1, 'a"b', null, undefined, true, 2.5, 'ключ'][Math.floor(rand() * 7)];
      if (r < 0.55) return Array.from({ length: Math.floor(rand() * 4) }, () => gen(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 5) }, () => [['b', 'a', 'B', 'aa', 'é', '1', '10'][Math.floor(rand() * 7)] + (rand() < 0.5 ? '' : 'x'), gen(depth + 1)]));
    };
    for (let i = 0; i < 300; i++) values.push(gen(0));
    for (const v of values) expect(canonicalJson(v)).toBe(first(v));
  });
});
