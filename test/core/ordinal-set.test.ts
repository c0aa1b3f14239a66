import fc from 'fast-check';
import { expect, test } from 'vitest';
import { OrdinalSet } from '../../src/core';

test('next and prev find neighbours across words and summary blocks', () => {
  const s = new OrdinalSet(8);
  for (const i of [0, 31, 32, 1023, 1024, 40_000]) s.add(i);
  expect(s.size).toBe(6);
  expect(s.next(0)).toBe(0);
  expect(s.next(1)).toBe(31);
  expect(s.next(33)).toBe(1023);
  expect(s.next(1025)).toBe(40_000);
  expect(s.next(40_001)).toBe(-1);
  expect(s.prev(40_000)).toBe(40_000);
  expect(s.prev(39_999)).toBe(1024);
  expect(s.prev(1022)).toBe(32);
  expect(s.prev(30)).toBe(0);
  expect(s.prev(-1)).toBe(-1);
  expect(s.prev(1_000_000)).toBe(40_000);
  s.delete(1024);
  s.delete(1024);
  expect(s.size).toBe(5);
  expect([...s]).toEqual([0, 31, 32, 1023, 40_000]);
});

test('behaves like a sorted Set under any sequence of adds and deletes (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 5000 })), { maxLength: 300 }), fc.integer({ min: 0, max: 5100 }), (ops, probe) => {
      const set = new OrdinalSet(1);
      const model = new Set<number>();
      for (const [isAdd, i] of ops) {
        if (isAdd) {
          set.add(i);
          model.add(i);
        } else {
          set.delete(i);
          model.delete(i);
        }
      }
      const sorted = [...model].sort((a, b) => a - b);
      expect([...set]).toEqual(sorted);
      expect(set.size).toBe(model.size);
      expect(set.has(probe)).toBe(model.has(probe));
      expect(set.next(probe)).toBe(sorted.find((x) => x >= probe) ?? -1);
      expect(set.prev(probe)).toBe([...sorted].reverse().find((x) => x <= probe) ?? -1);
    }),
  );
});
