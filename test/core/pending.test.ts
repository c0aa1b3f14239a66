import { describe, expect, test } from 'vitest';
import { ESCALATED_PRIORITY, PendingQueue, type AttemptOutcome, type PlacementFailure, type SchedJob } from '../../src/core';
import { job } from './fixtures';

const failure: PlacementFailure = { ok: false, never: false, totalNodes: 1, reasons: { 'insufficient-cpu': 1 }, tasks: 1, gpuModels: [], nodesEvaluated: 1 };

/** Runs a cycle where jobs of the given sizes fit while `capacity` lasts. */
function cycle(q: PendingQueue, capacity: { cpuMillis: number }, tried: string[], max = 100) {
  return q.runCycle((j: SchedJob): AttemptOutcome => {
    tried.push(j.id);
    if (j.task.cpuMillis > capacity.cpuMillis) return { ok: false, sameForShape: true, failure };
    capacity.cpuMillis -= j.task.cpuMillis;
    return { ok: true };
  }, max);
}

const sized = (id: string, cpuMillis: number, priority = 0, submittedAtMs = 0) => job({ id, priority, submittedAtMs, resources: { cpuMillis, memBytes: 0 } });

describe('PendingQueue', () => {
  test('offers jobs in priority order and removes those placed', () => {
    const q = new PendingQueue();
    q.add(sized('low', 1000, 1, 1));
    q.add(sized('high', 1000, 9, 2));
    q.add(sized('mid', 1000, 5, 3));
    const tried: string[] = [];
    const report = cycle(q, { cpuMillis: 10_000 }, tried);
    expect(tried).toEqual(['high', 'mid', 'low']);
    expect(report).toEqual({ attempts: 3, placed: 3, more: false });
    expect(q.size).toBe(0);
  });

  test('a shape that failed is not tried again in the same cycle', () => {
    const q = new PendingQueue();
    for (let i = 0; i < 5; i++) q.add(sized(`big${i}`, 8000, 0, i));
    q.add(sized('small', 1000, 0, 10));
    const tried: string[] = [];
    cycle(q, { cpuMillis: 4000 }, tried);
    expect(tried).toEqual(['big0', 'small']);
    expect(q.size).toBe(5);
    expect(q.whyWaiting('big3')?.failure).toBe(failure);
  });

  test('waiting jobs are retried only after their pool is marked dirty, best first', () => {
    const q = new PendingQueue();
    q.add(sized('a', 8000, 0, 1));
    q.add(sized('b', 8000, 0, 2));
    const tried: string[] = [];
    cycle(q, { cpuMillis: 0 }, tried);
    expect(q.hasWork).toBe(false);
    cycle(q, { cpuMillis: 100_000 }, tried);
    expect(tried).toEqual(['a']);
    q.markDirty('general');
    expect(q.hasWork).toBe(true);
    cycle(q, { cpuMillis: 8000 }, tried);
    expect(tried).toEqual(['a', 'a', 'b']);
    expect(q.size).toBe(1);
    expect(q.has('b')).toBe(true);
  });

  test('a stop keeps every later job waiting, this cycle and the next, until the stopping job starts', () => {
    const q = new PendingQueue();
    q.add(sized('head', 8000, 0, 1));
    q.add(sized('small', 1000, 0, 2));
    const tried: string[] = [];
    const strict = (capacity: { cpuMillis: number }) =>
      q.runCycle((j): AttemptOutcome => {
        tried.push(j.id);
        if (j.task.cpuMillis > capacity.cpuMillis) return { ok: false, sameForShape: true, failure, stop: true };
        capacity.cpuMillis -= j.task.cpuMillis;
        return { ok: true };
      }, 100);
    expect(strict({ cpuMillis: 4000 })).toEqual({ attempts: 1, placed: 0, more: false });
    q.add(sized('late', 1000, 0, 3));
    strict({ cpuMillis: 4000 });
    expect(tried).toEqual(['head', 'head']);
    expect(q.size).toBe(3);
    strict({ cpuMillis: 10_000 });
    expect(tried).toEqual(['head', 'head', 'head', 'small', 'late']);
    expect(q.size).toBe(0);
  });

  test('a job that fails for a reason of its own does not hold back the rest of its shape', () => {
    const q = new PendingQueue();
    for (const id of ['a', 'b', 'c']) q.add(sized(id, 1000, 0, id.charCodeAt(0)));
    // First cycle: nothing fits; all three wait in one shape group.
    q.runCycle(() => ({ ok: false, sameForShape: true, failure }), 100);
    q.markDirty('general');
    const tried: string[] = [];
    // Now 'a' and 'b' are held for reasons of their own (say, a later deadline); 'c' may start.
    const report = q.runCycle((j) => {
      tried.push(j.id);
      return j.id === 'c' ? { ok: true } : { ok: false, sameForShape: false, reason: 'held' };
    }, 100);
    expect(tried).toEqual(['a', 'b', 'c']);
    expect(report).toMatchObject({ placed: 1 });
    // The held jobs are still pending and are retried, best first, when their pool changes.
    expect(q.size).toBe(2);
    q.markDirty('general');
    const again: string[] = [];
    q.runCycle((j) => (again.push(j.id), { ok: true }), 100);
    expect(again).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
  });

  test('a budget stops the cycle and says there is more', () => {
    const q = new PendingQueue();
    for (let i = 0; i < 4; i++) q.add(sized(`j${i}`, 1000, 0, i));
    const tried: string[] = [];
    expect(cycle(q, { cpuMillis: 100_000 }, tried, 3)).toEqual({ attempts: 3, placed: 3, more: true });
    expect(cycle(q, { cpuMillis: 100_000 }, tried, 3)).toEqual({ attempts: 1, placed: 1, more: false });
  });

  test('remove takes a job out of the active queue or of its waiting group', () => {
    const q = new PendingQueue();
    q.add(sized('x', 8000));
    q.add(sized('y', 1000));
    cycle(q, { cpuMillis: 0 }, []);
    expect(q.remove('x')?.id).toBe('x');
    expect(q.remove('x')).toBeUndefined();
    expect(q.sizeOf('general')).toBe(1);
    expect(q.jobs().map((j) => j.id)).toEqual(['y']);
  });

  test('a deferrable job still waiting at its latest start less its safety margin (an hour and one more run) goes ahead of every class', () => {
    const q = new PendingQueue();
    // Runs an hour (walltime 2 h), due by 10:00: latest start 09:00, escalated at 09:00 − 1 h − 2 h = 06:00.
    q.add(job({ id: 'due', submittedAtMs: 0, durationSeconds: 3600, walltimeSeconds: 7200, deferrable: { deadlineMs: 10 * HOUR } }));
    q.add(sized('urgent', 1000, 9, 1));
    expect(q.nextWakeMs()).toBe(6 * HOUR);
    expect([...q.escalateDue(6 * HOUR - 1)]).toEqual([]);
    expect([...q.escalateDue(6 * HOUR)]).toEqual(['general']);
    expect(q.get('due')?.priority).toBe(ESCALATED_PRIORITY);
  });

  test('a job released from a hold queues behind the jobs of its class that cannot wait, ahead of lower classes', () => {
    const q = new PendingQueue();
    const deferred = job({ id: 'deferred', priority: 5, submittedAtMs: 0, durationSeconds: 600, deferrable: { maxDelaySeconds: 12 * 3600 }, resources: { cpuMillis: 1000, memBytes: 0 } });
    q.add(deferred);
    // Offered once, it is held until 03:00.
    q.runCycle(() => ({ ok: false, sameForShape: false, hold: { untilMs: 3 * HOUR, reason: 'deferred' }, reason: 'deferred' }), 10);
    q.add(sized('same-class', 1000, 5, HOUR));
    q.add(sized('lower-class', 1000, 4, HOUR));
    q.releaseDue(3 * HOUR);
    const tried: string[] = [];
    cycle(q, { cpuMillis: 10_000 }, tried);
    expect(tried).toEqual(['same-class', 'deferred', 'lower-class']);
  });
});

const HOUR = 3_600_000;
