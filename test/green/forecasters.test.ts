import { describe, expect, test } from 'vitest';
import {
  ErrorTracker,
  blendForecaster,
  createSeries,
  fittedPersistenceForecaster,
  fittedProfileForecaster,
  forecastError,
  forecastErrors,
  loadSeries,
  makeForecaster,
  persistenceForecaster,
  profileForecaster,
  seasonalNaiveForecaster,
  skilled,
  FORECASTERS,
  MIN_ERROR_SCORES,
  SCORED_HORIZONS_MS,
  UNMEASURED_ERROR_BOUND,
  UNMEASURED_ERROR_SHARE,
  plannedError,
  type LiveForecaster,
} from '../../src/green';
import { seededRng } from '../../src/sim/rng';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const STEP = 30 * 60_000;

/** A recorded series on a half-hour grid over `days`, from a function of time. */
function seriesOf(days: number, f: (ms: number) => number) {
  const points = Array.from({ length: (days * DAY) / STEP }, (_, i) => ({ atMs: i * STEP, value: f(i * STEP) }));
  return createSeries(points, { name: 'test', kind: 'carbon', outside: 'clamp' });
}

/** A daily cycle between 100 and 300 gCO2/kWh, lowest at 03:00 and highest at 15:00. */
const daily = (ms: number) => 200 - 100 * Math.cos((2 * Math.PI * (ms - 3 * HOUR)) / DAY);

/** A constant forecaster (always `value`), to know its errors exactly. */
function constant(value: number): LiveForecaster {
  return { observe() {}, forecast: (nowMs, horizonMs) => [{ atMs: nowMs, value }, { atMs: nowMs + horizonMs, value }] };
}

describe('seasonal naive', () => {
  test('forecasts the same time yesterday, and the latest value for now and before a day has been seen', () => {
    const f = seasonalNaiveForecaster({ stepMs: HOUR, periodMs: DAY });
    f.observe(0, 100);
    expect(f.forecast(0, 3 * HOUR).map((p) => p.value)).toEqual([100, 100, 100, 100]);
    for (let h = 1; h <= 24; h++) f.observe(h * HOUR, h);
    // At 24:00 the forecast for 25:00 is 01:00's value, for 48:00 it is 24:00's (the same time one day back).
    const forecast = f.forecast(24 * HOUR, 24 * HOUR);
    expect(forecast[0].value).toBe(24);
    expect(forecast[1]).toEqual({ atMs: 25 * HOUR, value: 1 });
    expect(forecast[24]).toEqual({ atMs: 48 * HOUR, value: 24 });
  });

  test('a weekly one looks a week back, and keeps no more than it needs', () => {
    const f = seasonalNaiveForecaster({ stepMs: HOUR, periodMs: 7 * DAY });
    for (let h = 0; h <= 21 * 24; h++) f.observe(h * HOUR, h);
    expect(f.forecast(21 * DAY, 2 * HOUR)[1].value).toBe((14 * 24 + 1) as number);
    expect(() => f.observe(0, 1)).toThrow(/before the last one/);
  });

  test('on a daily cycle, same time yesterday is exact a day ahead where persistence is not', () => {
    const series = seriesOf(6, daily);
    const options = { horizonMs: 12 * HOUR, fromMs: 0, toMs: 6 * DAY, stepMs: STEP };
    const seasonal = forecastError(series, seasonalNaiveForecaster({ stepMs: STEP, periodMs: DAY }), options);
    const persistence = forecastError(series, persistenceForecaster({ stepMs: STEP, alpha: 1 }), options);
    expect(seasonal.mae).toBeLessThan(1e-9);
    expect(persistence.mae).toBeGreaterThan(50);
  });
});

describe('quiet forecasters (before they have history)', () => {
  test('a quiet seasonal naive forecasts nothing until some time ahead was seen a period before, then NaN (no forecast) at the times not seen', () => {
    const quiet = seasonalNaiveForecaster({ stepMs: HOUR, periodMs: DAY, quiet: true });
    const loud = seasonalNaiveForecaster({ stepMs: HOUR, periodMs: DAY });
    for (const f of [quiet, loud]) f.observe(0, 100);
    expect(quiet.forecast(0, 12 * HOUR)).toEqual([]);
    expect(loud.forecast(0, 12 * HOUR).every((p) => p.value === 100)).toBe(true);
    for (let h = 1; h <= 10; h++) for (const f of [quiet, loud]) f.observe(h * HOUR, 100 + h);
    // At 10:00, 12 h ahead is still unseen a day before; 20 h ahead is 06:00 tomorrow, seen today.
    expect(quiet.forecast(10 * HOUR, 12 * HOUR)).toEqual([]);
    const ahead = quiet.forecast(10 * HOUR, 20 * HOUR);
    const plain = loud.forecast(10 * HOUR, 20 * HOUR);
    expect(ahead.map((p) => p.atMs)).toEqual(plain.map((p) => p.atMs));
    // Now and up to midnight: not seen a day before, so no forecast; the loud one holds the latest value there.
    expect(ahead.slice(0, 14).every((p) => Number.isNaN(p.value))).toBe(true);
    expect(plain.slice(0, 14).every((p) => p.value === 110)).toBe(true);
    // From midnight on: the value a day before, as the loud one.
    expect(ahead.slice(14)).toEqual(plain.slice(14));
    expect(ahead[20].value).toBe(106);
  });

  test('a quiet member is scored only on what it forecast: a blend weighs it nothing where it has no score, so a cold blend on a rising day does not take yesterday for tomorrow', () => {
    // Hourly, from a dawn trough at 04:00 the grid rises all day (as Texas on 2022-12-29). At 21:00 same time
    // yesterday says tomorrow's 04:00 comes back to the trough: a guess about a grid not yet seen to repeat
    // itself, for which no forecast has been scored. Fitted persistence, scored all day, is all the blend says.
    const grid = { stepMs: HOUR };
    const blend = makeForecaster('blend', grid);
    const persistence = fittedPersistenceForecaster(grid);
    const seasonal = skilled(seasonalNaiveForecaster({ ...grid, periodMs: DAY, quiet: true }));
    const rising = (h: number) => (h < 4 ? 237 - 11 * h : 193 + (h - 4) * 11);
    for (let h = 0; h <= 21; h++) {
      for (const f of [blend, persistence, seasonal]) {
        f.observe(h * HOUR, rising(h));
        f.forecast(h * HOUR, 48 * HOUR);
      }
    }
    const at = (f: LiveForecaster, aheadH: number) => f.forecast(21 * HOUR, 48 * HOUR).find((p) => p.atMs === (21 + aheadH) * HOUR)!.value;
    expect(at(seasonal, 7)).toBe(rising(4));
    // Same time yesterday's forecasts so far were all for times it had not seen a day before: none was scored.
    expect(seasonal.recentError(HOUR)).toBeUndefined();
    expect(seasonal.recentError(7 * HOUR)).toBeUndefined();
    expect(persistence.recentError(7 * HOUR)).toBeDefined();
    // Fitted persistence's candidates tied all day (yesterday unseen): the tie goes to persistence itself (alpha
    // 1), not to alpha 0, which is same time yesterday again, to a rounding error.
    expect(at(persistence, 7)).toBe(rising(21));
    expect(at(blend, 7)).toBe(rising(21));
  });

  test('a quiet daily profile forecasts nothing until a day is seen; a blend leaves its quiet members out', () => {
    const grid = { stepMs: STEP };
    const profile = fittedProfileForecaster({ ...grid, quiet: true });
    const blend = makeForecaster('blend', grid);
    // Before a day is seen, the blend's quiet members say nothing for the times they have not seen a period
    // before; where they do speak, they are not yet scored and weigh nothing while fitted persistence is.
    const persistence = fittedPersistenceForecaster(grid);
    const signal = (t: number) => daily(t) + 20 * Math.sin(t / 7_000_000);
    const feed = (fromMs: number, toMs: number) => {
      for (let t = fromMs; t < toMs; t += STEP) {
        for (const f of [profile, blend, persistence]) {
          f.observe(t, signal(t));
          f.forecast(t, 48 * HOUR);
        }
      }
    };
    feed(0, 20 * HOUR);
    expect(profile.forecast(20 * HOUR - STEP, 12 * HOUR)).toEqual([]);
    // Up to 18 h ahead, the longest horizon fitted persistence has been scored at by now (beyond it none is
    // scored, and every member that speaks weighs the same).
    const upTo18h = (f: LiveForecaster) => f.forecast(20 * HOUR - STEP, 48 * HOUR).slice(0, (18 * HOUR) / STEP + 1);
    expect(upTo18h(blend)).toEqual(upTo18h(persistence));
    feed(20 * HOUR, 3 * DAY);
    const spoken = profile.forecast(3 * DAY - STEP, 12 * HOUR);
    expect(spoken).toHaveLength(25);
    expect(spoken.every((p) => Number.isFinite(p.value))).toBe(true);
    // Once the others are scored, the blend is no longer fitted persistence alone.
    expect(blend.forecast(3 * DAY - STEP, 48 * HOUR)).not.toEqual(persistence.forecast(3 * DAY - STEP, 48 * HOUR));
    // And never NaN, though a quiet member is NaN where it has not seen a period before (two days ahead, the profile).
    expect(blend.forecast(3 * DAY - STEP, 48 * HOUR).every((p) => Number.isFinite(p.value))).toBe(true);
  });
});

describe('recent error', () => {
  test('an error tracker scores each horizon against the value in force at its target', () => {
    const tracker = new ErrorTracker({ horizonsMs: [HOUR, 2 * HOUR] });
    expect(tracker.errorAt(HOUR)).toBeUndefined();
    tracker.score(0, 100);
    tracker.record(0, [{ atMs: 0, value: 100 }]);
    // Observed at 01:00 (the 1 h target) and 02:30 (after the 2 h target, when 01:00's value was in force).
    tracker.score(HOUR, 130);
    tracker.score(2.5 * HOUR, 0);
    expect(tracker.errorAt(HOUR)).toBe(30);
    expect(tracker.errorAt(2 * HOUR)).toBe(30);
    expect(tracker.errorAt(1.5 * HOUR)).toBe(30);
  });

  test('a skilled forecaster knows its recent error per horizon, and older errors fade', () => {
    const f = skilled(constant(200), { memory: 48, recordEveryMs: STEP });
    // 50 off for the first 12 hours, 10 off for the next three and a half days.
    const series = seriesOf(4, (ms) => (ms < 12 * HOUR ? 250 : 210));
    for (let t = 0; t < 4 * DAY; t += STEP) f.observe(t, series.valueAt(t));
    // A day ahead, every target came after the change.
    expect(f.recentError(24 * HOUR)).toBeCloseTo(10, 6);
    // An hour ahead, the first 50s weigh (47/48)^~150 of what they did.
    expect(f.recentError(HOUR)).toBeGreaterThan(10);
    expect(f.recentError(HOUR)).toBeLessThan(12);
  });
});

describe('forecasters fitted and blended on past data only', () => {
  test('forecastErrors scores several horizons in one replay, as forecastError does one', () => {
    const series = seriesOf(4, (ms) => daily(ms) + ((ms / STEP) % 7) * 3);
    const options = { fromMs: 0, toMs: 4 * DAY, stepMs: STEP };
    const many = forecastErrors(series, persistenceForecaster({ stepMs: STEP }), { ...options, horizonsMs: [HOUR, 6 * HOUR] });
    expect(many[0]).toEqual(forecastError(series, persistenceForecaster({ stepMs: STEP }), { ...options, horizonMs: HOUR }));
    expect(many[1]).toEqual(forecastError(series, persistenceForecaster({ stepMs: STEP }), { ...options, horizonMs: 6 * HOUR }));
  });

  test('fitted persistence learns a daily cycle (low alpha far ahead) where the default alpha is worse', () => {
    const series = seriesOf(10, daily);
    const options = { horizonMs: 9 * HOUR, fromMs: 0, toMs: 10 * DAY, stepMs: STEP, warmupMs: 3 * DAY };
    const fitted = forecastError(series, fittedPersistenceForecaster({ stepMs: STEP }), options);
    const fixed = forecastError(series, persistenceForecaster({ stepMs: STEP, alpha: 0.95 }), options);
    expect(fitted.mae).toBeLessThan(fixed.mae / 5);
  });

  test('fitted persistence keeps to the latest value on a random walk, where yesterday says nothing', () => {
    let value = 200;
    let seed = 7;
    const walk = Array.from({ length: (10 * DAY) / STEP }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      value = Math.max(0, value + ((seed / 2 ** 31) * 2 - 1) * 15);
      return value;
    });
    const series = seriesOf(10, (ms) => walk[ms / STEP]);
    const options = { horizonMs: 2 * HOUR, fromMs: 0, toMs: 10 * DAY, stepMs: STEP, warmupMs: 3 * DAY };
    const fitted = forecastError(series, fittedPersistenceForecaster({ stepMs: STEP }), options);
    const yesterday = forecastError(series, persistenceForecaster({ stepMs: STEP, alpha: 0 }), options);
    const latest = forecastError(series, persistenceForecaster({ stepMs: STEP, alpha: 1 }), options);
    expect(fitted.mae).toBeLessThan(yesterday.mae);
    expect(fitted.mae).toBeLessThan(latest.mae * 1.25);
  });

  test('a blend leans on the member with the smaller recent error', () => {
    const series = seriesOf(8, daily);
    const memory = { memory: 48, recordEveryMs: STEP };
    const good = skilled(seasonalNaiveForecaster({ stepMs: STEP, periodMs: DAY }), memory);
    const bad = skilled(constant(400), memory);
    const blend = blendForecaster([good, bad], { stepMs: STEP }, memory);
    const options = { horizonMs: 6 * HOUR, fromMs: 0, toMs: 8 * DAY, stepMs: STEP, warmupMs: 4 * DAY };
    const blended = forecastError(series, blend, options);
    // Equal weights would be about half of the bad member's error (around 100) away.
    expect(blended.mae).toBeLessThan(1);
    expect(blend.recentError(6 * HOUR)).toBeLessThan(1);
  });

  test('every named forecaster runs out of sample on the pinned British excerpt, the blend within reach of its best member', () => {
    const series = loadSeries('test/fixtures/gb_ci-excerpt.csv', { outside: 'clamp' });
    const options = { horizonsMs: [HOUR, 6 * HOUR], fromMs: series.startMs, toMs: series.endMs, stepMs: STEP, warmupMs: DAY };
    const scores = Object.fromEntries(FORECASTERS.map((name) => [name, forecastErrors(series, makeForecaster(name, { stepMs: series.stepMs }), options)]));
    for (const name of FORECASTERS) for (const e of scores[name]) expect(e.count).toBeGreaterThan(60);
    const bestAt = (i: number) => Math.min(scores['fitted-persistence'][i].mae, scores.profile[i].mae, scores['seasonal-day'][i].mae, scores['seasonal-week'][i].mae);
    expect(scores.blend[0].mae).toBeLessThan(bestAt(0) * 1.5);
    expect(scores.blend[1].mae).toBeLessThan(bestAt(1) * 1.5);
  });
});

describe('daily profile', () => {
  test("forecasts the same time on the days before plus today's offset, fading by rho an hour", () => {
    const f = profileForecaster({ stepMs: HOUR, rho: 0.5, days: 2 });
    f.observe(0, 7);
    // Before a day has been observed: the latest value.
    expect(f.forecast(0, 2 * HOUR).map((p) => p.value)).toEqual([7, 7, 7]);
    // Day 0: the hour of the day; day 1: ten more.
    for (let h = 1; h < 24; h++) f.observe(h * HOUR, h);
    for (let h = 24; h < 48; h++) f.observe(h * HOUR, (h % 24) + 10);
    // At 48:00 (day 2) the latest value is 4; the profile there is the mean of 00:00 on days 0 and 1, (7 + 10) / 2.
    f.observe(48 * HOUR, 4);
    const forecast = f.forecast(48 * HOUR, 3 * HOUR);
    expect(forecast[0].value).toBe(4);
    // 51:00: profile (3 + 13) / 2 = 8, plus the offset 4 − 8.5 faded three hours: 8 − 4.5 / 8.
    expect(forecast[3]).toEqual({ atMs: 51 * HOUR, value: 8 - 4.5 / 8 });
  });

  test('uses only the days it averages, and what it has seen by now', () => {
    const oneDay = profileForecaster({ stepMs: HOUR, rho: 0, days: 1 });
    const twoDays = profileForecaster({ stepMs: HOUR, rho: 0, days: 2 });
    for (const f of [oneDay, twoDays]) for (let h = 0; h <= 36; h++) f.observe(h * HOUR, h < 24 ? 100 : 200);
    // 48:00 from 36:00 (rho 0: the profile alone): day 1's 200, or the mean with day 0's 100.
    expect(oneDay.forecast(36 * HOUR, 12 * HOUR)[12].value).toBe(200);
    expect(twoDays.forecast(36 * HOUR, 12 * HOUR)[12].value).toBe(150);
    // 66:00: a day back is 42:00, not seen yet at 36:00; two days back is 18:00 (100).
    expect(oneDay.forecast(36 * HOUR, 30 * HOUR)[30].value).toBe(200);
    expect(twoDays.forecast(36 * HOUR, 30 * HOUR)[30].value).toBe(100);
    expect(() => oneDay.observe(0, 1)).toThrow(/before the last one/);
  });

  test('refuses a fade rate outside 0..1 and days that are not a whole number of at least one', () => {
    expect(() => profileForecaster({ stepMs: HOUR, rho: 1.5 })).toThrow(/rho/);
    expect(() => profileForecaster({ stepMs: HOUR, rho: 0.5, days: 0 })).toThrow(/days/);
    expect(() => profileForecaster({ stepMs: HOUR, rho: 0.5, days: 1.5 })).toThrow(/days/);
  });

  test("on a daily cycle with each hour's own noise, a week's profile beats the same time yesterday", () => {
    const random = seededRng(7);
    const noise = new Map<number, number>();
    const series = seriesOf(16, (ms) => {
      if (!noise.has(ms)) noise.set(ms, (random() - 0.5) * 80);
      return daily(ms) + noise.get(ms)!;
    });
    const options = { horizonMs: 12 * HOUR, fromMs: 0, toMs: 16 * DAY, stepMs: STEP, warmupMs: 8 * DAY };
    const profile = forecastError(series, profileForecaster({ stepMs: STEP, rho: 0.9 }), options);
    const yesterday = forecastError(series, seasonalNaiveForecaster({ stepMs: STEP, periodMs: DAY }), options);
    // Yesterday's value carries its own noise besides today's; a mean of seven days mostly today's.
    expect(profile.mae).toBeLessThan(yesterday.mae * 0.85);
  });

  test('fitted on past data, it finds that a day-long level shift persists', () => {
    // Each day the whole cycle moves by its own level (weather for a day): rho 1 carries it to the evening.
    const random = seededRng(11);
    const levels = Array.from({ length: 12 }, () => (random() - 0.5) * 120);
    const series = seriesOf(12, (ms) => daily(ms) + levels[Math.floor(ms / DAY)]);
    const options = { horizonMs: 6 * HOUR, fromMs: 0, toMs: 12 * DAY, stepMs: STEP, warmupMs: 9 * DAY };
    const memory = { recordEveryMs: STEP };
    const fitted = forecastError(series, fittedProfileForecaster({ stepMs: STEP }, memory), options);
    const fading = forecastError(series, profileForecaster({ stepMs: STEP, rho: 0.5 }), options);
    // Forecasts that cross midnight take the new day's level wrong; the rest are exact.
    expect(fitted.mae).toBeLessThan(fading.mae * 0.5);
  });
});

describe('the error a planner holds against a forecast (plannedError)', () => {
  test('measured often enough: the recent error; before: a quarter of the level, or what the shorter horizons measured if larger, twice against a later window; nothing observed: Infinity', () => {
    const f = skilled(persistenceForecaster({ stepMs: STEP, alpha: 1 }));
    expect(plannedError(f, 12 * HOUR)).toBe(Infinity);
    // A day of a signal stepping between 100 and 160 every 3 hours: short horizons are scored 12 times long before 24 h is.
    for (let t = 0; t < 20 * HOUR; t += STEP) f.observe(t, Math.floor(t / (3 * HOUR)) % 2 === 0 ? 100 : 160);
    expect(f.recentError(HOUR, MIN_ERROR_SCORES)).toBeDefined();
    // The larger of the week's error and the last half day's (see below).
    expect(plannedError(f, HOUR)).toBe(Math.max(f.recentError(HOUR, MIN_ERROR_SCORES)!, f.latelyError(HOUR)!));
    expect(f.recentError(24 * HOUR, MIN_ERROR_SCORES)).toBeUndefined();
    // Nothing measured that far ahead and nothing large nearer: a quarter of the level, here a constant 1000, taken twice.
    const flat = skilled(persistenceForecaster({ stepMs: STEP, alpha: 1 }));
    for (let t = 0; t < 6 * HOUR; t += STEP) flat.observe(t, 1000);
    expect(UNMEASURED_ERROR_BOUND).toBe(2);
    expect(plannedError(flat, 24 * HOUR)).toBe(UNMEASURED_ERROR_BOUND * UNMEASURED_ERROR_SHARE * 1000);
    // Against starting now the guess is taken once.
    expect(plannedError(flat, 24 * HOUR, 'now')).toBe(UNMEASURED_ERROR_SHARE * 1000);
    // The level is the day's mean, not the latest value: a sudden trough does not lower the prior with it.
    flat.observe(6 * HOUR, 200);
    expect(flat.level()).toBe(1000);
    // A shorter horizon measured worse than a quarter of the level: the largest such error (taken twice), not the prior
    // (3 h ahead persistence is always at the other step, 60 off; 6 h ahead it is right again).
    expect(f.recentError(3 * HOUR)).toBe(60);
    expect(f.recentError(6 * HOUR)).toBe(0);
    expect(plannedError(f, 24 * HOUR)).toBe(120);
    expect(plannedError(f, 24 * HOUR, 'now')).toBe(60);
    // A measured error is taken once, whichever forecast it is held against.
    expect(plannedError(f, HOUR, 'now')).toBe(plannedError(f, HOUR));
    // The largest error measured up to a horizon is the largest of the scored horizons' own errors.
    const scored = SCORED_HORIZONS_MS.filter((h) => h <= 24 * HOUR && f.recentError(h) !== undefined);
    expect(f.largestError(24 * HOUR)).toBe(Math.max(...scored.map((h) => f.recentError(h)!)));
    expect(f.largestError(2 * HOUR)).toBe(Math.max(f.recentError(0.5 * HOUR)!, f.recentError(HOUR)!, f.recentError(2 * HOUR)!));
    expect(skilled(persistenceForecaster({ stepMs: STEP })).largestError(DAY)).toBeUndefined();
  });

  test('errors come in runs: once measured, a planner holds the larger of the week\'s error and the last half day\'s, and the week\'s again when the run is over', () => {
    // A constant forecast of 200: 5 off for a week (the grid calm), then 25 off for 12 hours (a cold snap: as
    // Bonneville on 2022-12-29, where a recent error of 5 g let jobs wait for an evening 16 g worse than forecast).
    const f = skilled(constant(200));
    let t = 0;
    const feed = (hours: number, value: number) => {
      for (const end = t + hours * HOUR; t < end; t += STEP) f.observe(t, value);
    };
    feed(7 * 24, 205);
    expect(f.recentError(6 * HOUR, MIN_ERROR_SCORES)).toBeCloseTo(5, 9);
    expect(plannedError(f, 6 * HOUR)).toBeCloseTo(5, 9);
    feed(12, 225);
    const week = f.recentError(6 * HOUR, MIN_ERROR_SCORES)!;
    const lately = f.latelyError(6 * HOUR)!;
    // The week's mean has barely moved; the last half day's is most of the way to the run's 25 (an exponential
    // mean with a memory of 12 scores, after 12 of them: 25 - 20 * (11/12)^12, about 18).
    expect(week).toBeLessThan(7);
    expect(lately).toBeCloseTo(25 - 20 * (11 / 12) ** 12, 6);
    expect(plannedError(f, 6 * HOUR)).toBe(lately);
    // Calm again for two days: the last half day's error falls back below the week's, which the planner holds.
    feed(48, 205);
    expect(f.latelyError(6 * HOUR)!).toBeLessThan(f.recentError(6 * HOUR)!);
    expect(plannedError(f, 6 * HOUR)).toBe(f.recentError(6 * HOUR, MIN_ERROR_SCORES));
  });
});
