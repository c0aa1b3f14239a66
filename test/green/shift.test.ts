import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { latestStartOf, planStart, type Point } from '../../src/green';

const MIN = 60_000;
const HOUR = 60 * MIN;
/** 2020-01-01 00:00 UTC, on every step grid. */
const BASE = Date.UTC(2020, 0, 1);

/** Value of the forecast's step function at `t`, by a linear scan (the first value before the first point). */
function valueAt(forecast: readonly Point[], t: number): number {
  let value = forecast[0].value;
  for (const p of forecast) if (p.atMs <= t) value = p.value;
  return value;
}

/** Mean over [s, s + d] by adding up the overlap of every step with the window. */
function bruteMean(forecast: readonly Point[], s: number, d: number): number {
  if (d === 0) return valueAt(forecast, s);
  let area = 0;
  forecast.forEach((p, i) => {
    const from = i === 0 ? -Infinity : p.atMs;
    const to = i + 1 < forecast.length ? forecast[i + 1].atMs : Infinity;
    const overlap = Math.min(to, s + d) - Math.max(from, s);
    if (overlap > 0) area += overlap * p.value;
  });
  return area / d;
}

/** Now, then every multiple of the step after now up to the latest start. */
function bruteCandidates(nowMs: number, latestStartMs: number, stepMs: number): number[] {
  const starts = [nowMs];
  for (let s = (Math.floor(nowMs / stepMs) + 1) * stepMs; s <= latestStartMs; s += stepMs) starts.push(s);
  return starts;
}

/**
 * A planning problem in whole minutes with integer values: every integral is an exact integer in floating
 * point, so the brute force and planStart compute bit-identical means and ties are real ties.
 */
const problem = fc
  .record({
    nowMin: fc.integer({ min: 0, max: 10_000 }),
    durationMin: fc.integer({ min: 0, max: 2 * 24 * 60 }),
    latestStartMin: fc.integer({ min: -600, max: 2 * 24 * 60 }),
    stepMin: fc.constantFrom(15, 30, 60),
    offsetsMin: fc.uniqueArray(fc.integer({ min: -180, max: 3000 }), { minLength: 1, maxLength: 120 }),
    values: fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 120, maxLength: 120 }),
    minimise: fc.boolean(),
  })
  .map(({ nowMin, durationMin, latestStartMin, stepMin, offsetsMin, values, minimise }) => {
    const nowMs = BASE + nowMin * MIN;
    const forecast = [...offsetsMin].sort((a, b) => a - b).map((m, i) => ({ atMs: nowMs + m * MIN, value: values[i] }));
    return { nowMs, durationMs: durationMin * MIN, latestStartMs: nowMs + latestStartMin * MIN, stepMs: stepMin * MIN, forecast, minimise };
  });

describe('planStart', () => {
  test('the chosen start is within [now, latest start] and the earliest brute-force optimum on the grid (property)', () => {
    fc.assert(
      fc.property(problem, (request) => {
        const { nowMs, durationMs, latestStartMs, stepMs, forecast, minimise } = request;
        const plan = planStart(request);
        const candidates = bruteCandidates(nowMs, latestStartMs, stepMs);
        const means = candidates.map((s) => bruteMean(forecast, s, durationMs));
        const best = minimise ? Math.min(...means) : Math.max(...means);
        expect(plan.startMs).toBeGreaterThanOrEqual(nowMs);
        expect(plan.startMs).toBeLessThanOrEqual(Math.max(nowMs, latestStartMs));
        expect(plan.startMs).toBe(candidates[means.indexOf(best)]);
        expect(plan.expectedMean).toBe(best);
        expect(plan.nowMean).toBe(means[0]);
      }),
      { numRuns: 500 },
    );
  });

  test('near-optimal on fractional green shares, maximised (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 100 }),
        fc.integer({ min: MIN, max: 24 * HOUR }),
        fc.integer({ min: 0, max: 48 * HOUR }),
        (shares, durationMs, windowMs) => {
          const nowMs = BASE + 7 * MIN;
          const forecast = shares.map((value, i) => ({ atMs: i === 0 ? nowMs : BASE + i * 30 * MIN, value }));
          const plan = planStart({ nowMs, durationMs, latestStartMs: nowMs + windowMs, forecast, stepMs: 30 * MIN, minimise: false });
          const best = Math.max(...bruteCandidates(nowMs, nowMs + windowMs, 30 * MIN).map((s) => bruteMean(forecast, s, durationMs)));
          expect(plan.expectedMean).toBeGreaterThanOrEqual(best - 1e-9);
          expect(plan.expectedMean).toBeCloseTo(bruteMean(forecast, plan.startMs, durationMs), 9);
        },
      ),
    );
  });

  test('a job with a declared duration and deadline always finishes by it (property)', () => {
    fc.assert(
      fc.property(problem, fc.integer({ min: 0, max: 3 * 24 * 60 }), (request, slackMin) => {
        const deadlineMs = request.nowMs + request.durationMs + slackMin * MIN;
        const latestStartMs = latestStartOf({ submittedAtMs: request.nowMs, durationMs: request.durationMs, deadlineMs });
        const plan = planStart({ ...request, latestStartMs });
        expect(plan.startMs + request.durationMs).toBeLessThanOrEqual(deadlineMs);
      }),
    );
  });

  test('starts now when nothing later is strictly better', () => {
    const flat = [{ atMs: BASE, value: 0.1 + 0.2 }, { atMs: BASE + HOUR, value: 0.3 }, { atMs: BASE + 2 * HOUR, value: 0.30000000000000004 }];
    expect(planStart({ nowMs: BASE + 5 * MIN, durationMs: HOUR, latestStartMs: BASE + 3 * HOUR, forecast: flat, stepMs: 30 * MIN }).startMs).toBe(BASE + 5 * MIN);
    const rising = [{ atMs: BASE, value: 100 }, { atMs: BASE + HOUR, value: 200 }];
    expect(planStart({ nowMs: BASE, durationMs: HOUR, latestStartMs: BASE + 5 * HOUR, forecast: rising, stepMs: 30 * MIN })).toEqual({ startMs: BASE, expectedMean: 100, nowMean: 100 });
  });

  test('the lowest time-weighted mean over the run; candidates on the wall-clock grid', () => {
    const forecast = [
      { atMs: BASE, value: 300 },
      { atMs: BASE + HOUR, value: 100 },
      { atMs: BASE + 90 * MIN, value: 200 },
      { atMs: BASE + 2 * HOUR, value: 300 },
    ];
    const plan = planStart({ nowMs: BASE + 10 * MIN, durationMs: 45 * MIN, latestStartMs: BASE + 4 * HOUR, forecast, stepMs: 30 * MIN });
    expect(plan).toEqual({ startMs: BASE + HOUR, expectedMean: (30 * 100 + 15 * 200) / 45, nowMean: 300 });
    const share = planStart({ nowMs: BASE + 10 * MIN, durationMs: 45 * MIN, latestStartMs: BASE + 4 * HOUR, forecast, stepMs: 30 * MIN, minimise: false });
    expect(share.startMs).toBe(BASE + 10 * MIN);
  });

  test('past the end of the forecast the last value holds', () => {
    const forecast = [{ atMs: BASE, value: 200 }, { atMs: BASE + HOUR, value: 50 }];
    expect(planStart({ nowMs: BASE, durationMs: 4 * HOUR, latestStartMs: BASE + 10 * HOUR, forecast, stepMs: HOUR })).toEqual({
      startMs: BASE + HOUR,
      expectedMean: 50,
      nowMean: (200 + 3 * 50) / 4,
    });
  });

  test('a job whose latest start is now or past, or that has no forecast, starts now', () => {
    const forecast = [{ atMs: BASE, value: 300 }, { atMs: BASE + HOUR, value: 10 }];
    expect(planStart({ nowMs: BASE, durationMs: HOUR, latestStartMs: BASE, forecast, stepMs: 30 * MIN }).startMs).toBe(BASE);
    expect(planStart({ nowMs: BASE, durationMs: HOUR, latestStartMs: BASE - HOUR, forecast, stepMs: 30 * MIN }).startMs).toBe(BASE);
    expect(planStart({ nowMs: BASE, durationMs: HOUR, latestStartMs: BASE + 59 * MIN, forecast, stepMs: HOUR }).startMs).toBe(BASE);
    const unknown = planStart({ nowMs: BASE, durationMs: HOUR, latestStartMs: BASE + 9 * HOUR, forecast: [], stepMs: 30 * MIN });
    expect(unknown.startMs).toBe(BASE);
    expect(unknown.expectedMean).toBeNaN();
  });

  test('refuses a step or duration that makes no sense', () => {
    const forecast = [{ atMs: BASE, value: 1 }];
    expect(() => planStart({ nowMs: BASE, durationMs: HOUR, latestStartMs: BASE + HOUR, forecast, stepMs: 0 })).toThrow(/bad step/);
    expect(() => planStart({ nowMs: BASE, durationMs: -1, latestStartMs: BASE + HOUR, forecast, stepMs: HOUR })).toThrow(/bad duration/);
  });
});

describe('latestStartOf', () => {
  const submittedAtMs = BASE;
  test('the deadline less the duration', () => expect(latestStartOf({ submittedAtMs, durationMs: HOUR, deadlineMs: BASE + 5 * HOUR })).toBe(BASE + 4 * HOUR));
  test('submission plus the longest delay', () => expect(latestStartOf({ submittedAtMs, durationMs: HOUR, maxDelaySeconds: 7200 })).toBe(BASE + 2 * HOUR));
  test('the earlier of the two', () => {
    expect(latestStartOf({ submittedAtMs, durationMs: HOUR, deadlineMs: BASE + 5 * HOUR, maxDelaySeconds: 7200 })).toBe(BASE + 2 * HOUR);
    expect(latestStartOf({ submittedAtMs, durationMs: 4 * HOUR, deadlineMs: BASE + 5 * HOUR, maxDelaySeconds: 7200 })).toBe(BASE + HOUR);
  });
  test('never before submission: a deadline that cannot be met, or no limit at all', () => {
    expect(latestStartOf({ submittedAtMs, durationMs: 6 * HOUR, deadlineMs: BASE + 5 * HOUR })).toBe(BASE);
    expect(latestStartOf({ submittedAtMs, durationMs: HOUR })).toBe(BASE);
    expect(latestStartOf({ submittedAtMs, durationMs: HOUR, maxDelaySeconds: 0 })).toBe(BASE);
  });
});
