import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { GreenDeferral } from '../../scheduler/green-deferral';
import type { Forecaster } from '../../src/green';
import type { Pool } from '../../src/protocol';
import { job } from '../core/fixtures';

const HOUR = 3_600_000;
const STEP = 15 * 60_000;

/** A forecaster of a given intensity profile, by hours from time 0. */
function profile(valueAt: (ms: number) => number): Forecaster {
  return {
    forecast(nowMs, horizonMs) {
      const out = [{ atMs: nowMs, value: valueAt(nowMs) }];
      for (let t = Math.floor(nowMs / STEP) * STEP + STEP; t <= nowMs + horizonMs; t += STEP) out.push({ atMs: t, value: valueAt(t) });
      return out;
    },
  };
}

function deferral(valueAt: (ms: number) => number, clock: { now: number }, due: Pool[][] = []) {
  return new GreenDeferral({ stepMs: STEP, forecaster: profile(valueAt), bookShare: 1, supplyOf: () => 10_000 }, () => clock.now, (pools) => due.push([...pools]));
}

const deferrable = (id: string, extra: Parameters<typeof job>[0] = {}) => job({ id, durationSeconds: 3600, deferrable: { maxDelaySeconds: 8 * 3600 }, ...extra });

describe('green deferral', () => {
  test('a deferrable job is held for the greenest window of its run, then released', () => {
    const clock = { now: 0 };
    // Dirty now, clean from 03:00 to 05:00.
    const d = deferral((ms) => (ms >= 3 * HOUR && ms < 5 * HOUR ? 100 : 500), clock);
    const j = deferrable('a');
    const hold = d.hold(j)!;
    expect(hold.untilMs).toBe(3 * HOUR);
    expect(hold.reason).toMatch(/^deferred for greener power until 1970-01-01T03:00:00.000Z: forecast 100 gCO2\/kWh over its run, against 500 if it started now \(latest start 1970-01-01T08:00:00.000Z\)$/);
    clock.now = 3 * HOUR;
    expect(d.hold(j)).toBeUndefined();
  });

  test('jobs that are not deferrable, or do not say how long they run, are never held', () => {
    const d = deferral(() => 500, { now: 0 });
    expect(d.hold(job({ id: 'plain' }))).toBeUndefined();
    expect(d.hold(job({ id: 'open-ended', deferrable: { maxDelaySeconds: 3600 } }))).toBeUndefined();
  });

  test('a job that needs a large part of its pool is not held', () => {
    const d = new GreenDeferral({ stepMs: STEP, forecaster: profile((ms) => (ms >= 3 * HOUR ? 100 : 500)), bookShare: 1, supplyOf: () => 64 }, () => 0, () => undefined);
    expect(d.hold(deferrable('big', { resources: { cpuMillis: 16_000, memBytes: 0 } }))).toBeUndefined();
    expect(d.hold(deferrable('small', { resources: { cpuMillis: 2000, memBytes: 0 } }))).toBeDefined();
  });

  test('deferred jobs book their pool, so they do not all start in the same greenest step', () => {
    const d = new GreenDeferral({ stepMs: STEP, forecaster: profile((ms) => (ms >= 3 * HOUR && ms < 4 * HOUR ? 100 : 500)), bookShare: 0.3, supplyOf: () => 100 }, () => 0, () => undefined);
    // Each job needs 1 core of 100 for an hour; 30 fit in the clean hour, the rest go elsewhere.
    const starts = Array.from({ length: 40 }, (_, i) => d.hold(deferrable(`j${i}`, { resources: { cpuMillis: 1000, memBytes: 0 } }))?.untilMs ?? 0);
    expect(starts.filter((t) => t === 3 * HOUR)).toHaveLength(30);
  });

  test('the planned start is never after the latest start, so a declared duration meets its deadline (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 900 }), { minLength: 96, maxLength: 96 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 24 }), (values, runHours, slackHours) => {
        const clock = { now: 0 };
        const d = deferral((ms) => values[Math.min(values.length - 1, Math.floor(ms / STEP))], clock);
        const deadlineMs = (runHours + slackHours) * HOUR;
        const j = job({ id: 'dl', durationSeconds: runHours * 3600, deferrable: { deadlineMs } });
        const start = d.hold(j)?.untilMs ?? clock.now;
        expect(start).toBeGreaterThanOrEqual(0);
        expect(start + runHours * HOUR).toBeLessThanOrEqual(deadlineMs);
      }),
      { numRuns: 300 },
    );
  });

  test('held pools are woken at the planned start', async () => {
    const due: Pool[][] = [];
    // A step of 15 minutes is too coarse for a test: plan on a 50 ms grid, greener from the next step on.
    const fine = new GreenDeferral(
      {
        stepMs: 50,
        bookShare: 1,
        supplyOf: () => 10_000,
        forecaster: { forecast: (nowMs, horizonMs) => Array.from({ length: Math.floor(horizonMs / 50) + 1 }, (_, i) => ({ atMs: nowMs + i * 50, value: i === 0 ? 500 : 100 })) },
      },
      () => Date.now(),
      (pools) => due.push([...pools]),
    );
    const held = fine.hold(job({ id: 'soon', pool: 'general', durationSeconds: 1, deferrable: { maxDelaySeconds: 7200 }, submittedAtMs: Date.now() }));
    expect(held).toBeDefined();
    await new Promise((r) => setTimeout(r, held!.untilMs - Date.now() + 30));
    expect(due).toEqual([['general']]);
  });
});
