import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { JobQueue, byPriorityThenSubmitTime } from '../../src/core';
import { job } from './fixtures';

describe('JobQueue', () => {
  test('priority first, then submit time, then id', () => {
    const q = new JobQueue();
    q.push(job({ id: 'late-normal', priority: 500, submittedAtMs: 20 }));
    q.push(job({ id: 'early-batch', priority: 100, submittedAtMs: 1 }));
    q.push(job({ id: 'urgent', priority: 1000, submittedAtMs: 30 }));
    q.push(job({ id: 'early-normal-b', priority: 500, submittedAtMs: 10 }));
    q.push(job({ id: 'early-normal-a', priority: 500, submittedAtMs: 10 }));
    const order = [];
    while (q.size > 0) order.push(q.pop()!.id);
    expect(order).toEqual(['urgent', 'early-normal-a', 'early-normal-b', 'late-normal', 'early-batch']);
  });

  test('remove takes a job out from anywhere; a job cannot be queued twice', () => {
    const q = new JobQueue();
    for (let i = 0; i < 5; i++) q.push(job({ id: `j${i}`, priority: 0, submittedAtMs: i }));
    expect(q.remove('j2')?.id).toBe('j2');
    expect(q.remove('j2')).toBeUndefined();
    expect(q.has('j2')).toBe(false);
    expect(() => q.push(q.get('j3')!)).toThrow(/already queued/);
    expect(q.toSortedArray().map((j) => j.id)).toEqual(['j0', 'j1', 'j3', 'j4']);
  });

  test('pops in comparator order after any mix of pushes and removals (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ priority: fc.integer({ min: 0, max: 3 }), at: fc.integer({ min: 0, max: 50 }), remove: fc.boolean() }), { maxLength: 60 }),
        (items) => {
          const q = new JobQueue();
          const jobs = items.map((it, i) => job({ id: `q${i}`, priority: it.priority, submittedAtMs: it.at }));
          jobs.forEach((j) => q.push(j));
          const kept = jobs.filter((j, i) => !(items[i].remove && q.remove(j.id)));
          const popped = [];
          while (q.size > 0) popped.push(q.pop()!.id);
          expect(popped).toEqual([...kept].sort(byPriorityThenSubmitTime).map((j) => j.id));
        },
      ),
    );
  });

  test('reorder applies a new comparator', () => {
    const q = new JobQueue();
    q.push(job({ id: 'a', priority: 1, submittedAtMs: 2 }));
    q.push(job({ id: 'b', priority: 2, submittedAtMs: 1 }));
    q.reorder((x, y) => x.submittedAtMs - y.submittedAtMs);
    expect(q.peek()?.id).toBe('b');
    q.reorder((x, y) => y.submittedAtMs - x.submittedAtMs);
    expect(q.peek()?.id).toBe('a');
  });
});
