import fc from 'fast-check';
import { expect, test } from 'vitest';
import { byEndTime, type ExpectedEnd } from '../../src/core';
import { SortedEnds } from '../../src/core/sorted-ends';

test('SortedEnds keeps the same order as sorting an array, through inserts and removals (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 50 }), fc.nat(2000))), (ops) => {
      const ends = new SortedEnds();
      const model: ExpectedEnd[] = [];
      let seq = 0;
      for (const [insert, endS, pick] of ops) {
        if (insert || model.length === 0) {
          const e = { jobId: `j${String(seq++).padStart(5, '0')}`, endMs: endS === 50 ? Infinity : endS * 1000 };
          ends.insert(e);
          model.push(e);
        } else {
          const [e] = model.splice(pick % model.length, 1);
          expect(ends.remove(e)).toBe(true);
          expect(ends.remove(e)).toBe(false);
        }
      }
      expect([...ends]).toEqual([...model].sort(byEndTime));
      expect(ends.size).toBe(model.length);
    }),
    { numRuns: 200 },
  );
});

test('chunks split as they grow, and order holds across them', () => {
  const ends = new SortedEnds();
  const all = Array.from({ length: 3000 }, (_, i) => ({ jobId: `j${i}`, endMs: (i * 7919) % 3001 }));
  for (const e of all) ends.insert(e);
  expect([...ends]).toEqual([...all].sort(byEndTime));
});
