import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  DAY_MS,
  HOUR_MS,
  createSeries,
  forecastError,
  loadSeries,
  oracleForecaster,
  persistenceForecaster,
  type LiveForecaster,
  type Point,
  type Series,
} from '../../src/green';

/** Excerpt of dos-group/lets-wait-awhile data/gb_ci.csv (Wiesner et al., Middleware 2021); see series.test.ts. */
const EXCERPT = fileURLToPath(new URL('../fixtures/gb_ci-excerpt.csv', import.meta.url));
const STEP = 30 * 60_000;
const START = Date.UTC(2021, 0, 1);
/** A daily shape of 48 half-hours, no two alike. */
const DAILY_SHAPE = Array.from({ length: 48 }, (_, i) => 200 + 80 * Math.sin((2 * Math.PI * i) / 48) + i);

/** `days` days of the daily shape, plus `shift` from day `changeDay` on. */
function dailySeries(days: number, changeDay = Infinity, shift = 0): Series {
  const points: Point[] = [];
  for (let i = 0; i < days * 48; i++) points.push({ atMs: START + i * STEP, value: DAILY_SHAPE[i % 48] + (i >= changeDay * 48 ? shift : 0) });
  return createSeries(points, { name: 'daily shape', kind: 'carbon' });
}

/** Shows a live forecaster the series on its grid up to `untilMs`. */
function showUpTo(forecaster: LiveForecaster, series: Series, untilMs: number): void {
  for (const p of series.points) if (p.atMs <= untilMs) forecaster.observe(p.atMs, p.value);
}

describe('forecasters', () => {
  test('the oracle is the recorded series on its grid, from now to the horizon (property)', () => {
    const series = loadSeries(EXCERPT);
    const oracle = oracleForecaster(series);
    fc.assert(
      fc.property(fc.integer({ min: series.startMs, max: series.endMs }), fc.integer({ min: 0, max: DAY_MS }), (nowMs, horizonMs) => {
        const forecast = oracle.forecast(nowMs, horizonMs);
        expect(forecast[0].atMs).toBe(nowMs);
        for (const p of forecast) expect(p.value).toBe(series.valueAt(p.atMs));
        for (const p of forecast.slice(1)) expect((p.atMs - series.startMs) % series.stepMs).toBe(0);
        const last = forecast[forecast.length - 1].atMs;
        expect(last).toBeLessThanOrEqual(nowMs + horizonMs);
        expect(last + series.stepMs).toBeGreaterThan(nowMs + horizonMs);
      }),
    );
    expect(forecastError(series, oracle, { horizonMs: 6 * HOUR_MS, fromMs: series.startMs, toMs: series.endMs, stepMs: STEP })).toMatchObject({ mae: 0, mape: 0 });
  });

  test('persistence blends the latest value with the same time yesterday, the latest weighing alpha per hour ahead', () => {
    const forecaster = persistenceForecaster({ stepMs: HOUR_MS, alpha: 0.5 });
    forecaster.observe(START, 200);
    forecaster.observe(START + HOUR_MS, 300);
    forecaster.observe(START + DAY_MS, 100);
    const forecast = forecaster.forecast(START + DAY_MS, 2 * HOUR_MS);
    expect(forecast).toEqual([
      { atMs: START + DAY_MS, value: 100 },
      { atMs: START + DAY_MS + HOUR_MS, value: 0.5 * 100 + 0.5 * 300 },
      { atMs: START + DAY_MS + 2 * HOUR_MS, value: 0.25 * 100 + 0.75 * 300 },
    ]);
  });

  test('persistence without a day of history uses the latest value; with no observation it knows nothing', () => {
    const forecaster = persistenceForecaster({ stepMs: HOUR_MS, alpha: 0 });
    expect(forecaster.forecast(START, DAY_MS)).toEqual([]);
    forecaster.observe(START, 250);
    expect(forecaster.forecast(START + 90 * 60_000, 3 * HOUR_MS).map((p) => p.value)).toEqual([250, 250, 250, 250]);
    expect(forecaster.forecast(START - 1, HOUR_MS)).toEqual([]);
    expect(() => forecaster.observe(START - 1, 1)).toThrow(/before the last one/);
  });

  test('persistence never reads the future: when the series changes only in the future, the forecast is the past pattern', () => {
    const series = dailySeries(5, 3, 1000);
    const nowMs = START + 3 * DAY_MS - STEP;
    const forecaster = persistenceForecaster({ stepMs: STEP, alpha: 0 });
    showUpTo(forecaster, series, nowMs);
    const forecast = forecaster.forecast(nowMs, 36 * HOUR_MS);
    expect(forecast).toHaveLength(73);
    for (const p of forecast) expect(p.value).toBe(DAILY_SHAPE[((p.atMs - START) / STEP) % 48]);
    expect(series.valueAt(nowMs + STEP)).toBe(DAILY_SHAPE[0] + 1000);
  });

  test('the replay shows a live forecaster only the past', () => {
    const series = loadSeries(EXCERPT);
    const inner = persistenceForecaster({ stepMs: series.stepMs });
    let lastSeenMs = -Infinity;
    const spy: LiveForecaster = {
      observe(atMs, value) {
        lastSeenMs = atMs;
        inner.observe(atMs, value);
      },
      forecast(nowMs, horizonMs) {
        expect(lastSeenMs).toBeLessThanOrEqual(nowMs);
        expect(nowMs - lastSeenMs).toBeLessThan(series.stepMs);
        return inner.forecast(nowMs, horizonMs);
      },
    };
    const { count } = forecastError(series, spy, { horizonMs: 6 * HOUR_MS, fromMs: series.startMs + 7 * 60_000, toMs: series.endMs, stepMs: STEP });
    expect(count).toBeGreaterThan(60);
  });

  test('on a purely periodic daily series, same time yesterday has no error at any horizon', () => {
    const series = dailySeries(6);
    for (const hours of [1, 6, 24, 30]) {
      const error = forecastError(series, persistenceForecaster({ stepMs: STEP, alpha: 0 }), { horizonMs: hours * HOUR_MS, fromMs: series.startMs, toMs: series.endMs, stepMs: STEP });
      expect(error.count).toBeGreaterThan(100);
      expect(error).toMatchObject({ mae: 0, mape: 0 });
    }
  });

  test('with the latest value in the blend, the error on the gb_ci excerpt grows with the horizon', () => {
    const series = loadSeries(EXCERPT);
    const errorAt = (hours: number) =>
      forecastError(series, persistenceForecaster({ stepMs: series.stepMs }), { horizonMs: hours * HOUR_MS, fromMs: series.startMs, toMs: series.endMs, stepMs: STEP }).mae;
    expect(errorAt(0)).toBe(0);
    expect(errorAt(1)).toBeLessThan(errorAt(6));
    expect(errorAt(1)).toBeGreaterThan(0);
  });
});
