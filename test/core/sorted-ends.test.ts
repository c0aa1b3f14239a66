import fc from 'fast-check';
import { expect, test } from 'vitest';
import { byEndTime, type ExpectedEnd } from '../../src/core';
import { SortedEnds } from '../../src/core/sorted-ends';

/** The order the list must keep, written out here rather than taken from the code: end time, then job id (ends never come last). */
function modelOrder(a: ExpectedEnd, b: ExpectedEnd): number {
  if (a.endMs !== b.endMs) return a.endMs < b.endMs ? -1 : 1;
  return a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0;
}

/** A chunk splits above this many entries (2 × CHUNK in src/core/sorted-ends.ts): the generator must go past it. */
const SPLIT_ABOVE = 512;

test('SortedEnds keeps the same order as sorting an array, through inserts and removals past chunk splits (property)', () => {
  let largestSize = 0;
  // Ends in 0..49 s (many ties) or never (Infinity, 50).
  const endS = fc.integer({ min: 0, max: 50 });
  fc.assert(
    fc.property(
      // A run of inserts that always passes the split threshold, then inserts and removals mixed, then removals that empty chunks.
      fc.array(endS, { minLength: SPLIT_ABOVE + 1, maxLength: 1500 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), endS, fc.nat(1_000_000)), { maxLength: 1500 }),
      fc.nat(1_000_000),
      (firstEnds, mixed, removeSeed) => {
        const ends = new SortedEnds();
        const model: ExpectedEnd[] = [];
        let seq = 0;
        const insert = (s: number) => {
          const e = { jobId: `j${String(seq++).padStart(5, '0')}`, endMs: s === 50 ? Infinity : s * 1000 };
          ends.insert(e);
          model.push(e);
          largestSize = Math.max(largestSize, model.length);
        };
        const removeAt = (pick: number) => {
          const [e] = model.splice(pick % model.length, 1);
          expect(ends.remove(e)).toBe(true);
          expect(ends.remove(e)).toBe(false);
        };
        for (const s of firstEnds) insert(s);
        for (const [kind, s, pick] of mixed) {
          if (kind < 4 || model.length === 0) insert(s);
          else removeAt(pick);
        }
        expect([...ends]).toEqual([...model].sort(modelOrder));
        expect(ends.size).toBe(model.length);
        // Remove about nine in ten, scattered: whole chunks empty out and leave.
        const keep = Math.floor(model.length / 10);
        for (let r = removeSeed; model.length > keep; r = (r * 1103515245 + 12345) % 2 ** 31) removeAt(r);
        expect([...ends]).toEqual([...model].sort(modelOrder));
        expect(ends.size).toBe(model.length);
      },
    ),
    { numRuns: 60 },
  );
  expect(largestSize).toBeGreaterThan(SPLIT_ABOVE);
});

test('chunks split as they grow, and order holds across them', () => {
  const ends = new SortedEnds();
  const all = Array.from({ length: 3000 }, (_, i) => ({ jobId: `j${i}`, endMs: (i * 7919) % 3001 }));
  for (const e of all) ends.insert(e);
  expect([...ends]).toEqual([...all].sort(byEndTime));
});
