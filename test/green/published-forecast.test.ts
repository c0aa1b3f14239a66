import { afterEach, describe, expect, test } from 'vitest';
import { blendWithPublished, makeForecaster, publishedForecaster, type Point } from '../../src/green';
import { PublishedForecast, fillForecastUrl, forecastOf } from '../../src/green/live-carbon';
import { seededRng } from '../../src/sim/rng';
import { waitUntil } from '../../harness/wait';
import { startJsonServer } from '../helpers/json-server';
import { ManualClock } from '../helpers/manual-clock';
import { silentLog } from '../helpers/stack';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const STEP = 30 * MIN;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe("a published forecast's shapes", () => {
  const at = (iso: string) => Date.parse(iso);

  test("this project's own, National Grid's half-hours and Electricity Maps' forecast, each in time order", () => {
    expect(forecastOf({ forecast: [{ atMs: 2_000, gPerKwh: 150 }, { atMs: 1_000, gPerKwh: 180 }] })).toEqual([
      { atMs: 1_000, value: 180 },
      { atMs: 2_000, value: 150 },
    ]);
    // National Grid's /intensity/{from}/fw48h: the actual value where it is known, else the forecast.
    const ng = {
      data: [
        { from: '2026-03-01T12:00Z', to: '2026-03-01T12:30Z', intensity: { forecast: 210, actual: 204, index: 'moderate' } },
        { from: '2026-03-01T12:30Z', to: '2026-03-01T13:00Z', intensity: { forecast: 190, actual: null, index: 'moderate' } },
      ],
    };
    expect(forecastOf(ng)).toEqual([
      { atMs: at('2026-03-01T12:00Z'), value: 204 },
      { atMs: at('2026-03-01T12:30Z'), value: 190 },
    ]);
    expect(forecastOf({ data: { regionid: 13, data: ng.data } })).toEqual(forecastOf(ng));
    const em = { zone: 'DE', forecast: [{ carbonIntensity: 320, datetime: '2026-03-01T13:00:00.000Z' }, { carbonIntensity: 301, datetime: '2026-03-01T14:00:00.000Z' }], updatedAt: '2026-03-01T12:41:00.000Z' };
    expect(forecastOf(em)).toEqual([
      { atMs: at('2026-03-01T13:00Z'), value: 320 },
      { atMs: at('2026-03-01T14:00Z'), value: 301 },
    ]);
  });

  test('one bad point refuses the whole answer; a reading is not a forecast', () => {
    const em = { forecast: [{ carbonIntensity: 320, datetime: '2026-03-01T13:00:00.000Z' }] };
    expect(forecastOf({ forecast: [{ ...em.forecast[0], datetime: 'soon' }] })).toBeUndefined();
    expect(forecastOf({ forecast: [...em.forecast, { carbonIntensity: 9_000, datetime: '2026-03-01T14:00:00.000Z' }] })).toBeUndefined();
    expect(forecastOf({ forecast: [{ atMs: 1_000, gPerKwh: -1 }] })).toBeUndefined();
    expect(forecastOf({ forecast: [] })).toBeUndefined();
    expect(forecastOf({ data: [{ from: '2026-03-01T12:00Z', intensity: { forecast: null, actual: null } }] })).toBeUndefined();
    expect(forecastOf({ gPerKwh: 120 })).toBeUndefined();
    expect(forecastOf({ carbonIntensity: 302, datetime: '2026-03-01T12:00:00.000Z' })).toBeUndefined();
  });

  test('{now} in the URL is the time of the poll to the minute, as National Grid takes it', () => {
    expect(fillForecastUrl('https://api.carbonintensity.org.uk/intensity/{now}/fw48h', at('2026-03-01T12:41:17.250Z'))).toBe('https://api.carbonintensity.org.uk/intensity/2026-03-01T12:41Z/fw48h');
    expect(fillForecastUrl('http://feed/forecast?zone=DE', 0)).toBe('http://feed/forecast?zone=DE');
  });
});

describe('the published forecaster', () => {
  test('the value observed for now and until the published forecast begins, then its values, its last beyond its end', () => {
    let published: Point[] | undefined;
    const f = publishedForecaster({ stepMs: HOUR, published: () => published });
    expect(f.forecast(0, 3 * HOUR)).toEqual([]);
    f.observe(0, 100);
    // Nothing received: nothing to say.
    expect(f.forecast(0, 3 * HOUR)).toEqual([]);
    published = [
      { atMs: 2 * HOUR, value: 40 },
      { atMs: 3 * HOUR, value: 60 },
    ];
    expect(f.forecast(0, 5 * HOUR)).toEqual([
      { atMs: 0, value: 100 },
      { atMs: HOUR, value: 100 },
      { atMs: 2 * HOUR, value: 40 },
      { atMs: 3 * HOUR, value: 60 },
      { atMs: 4 * HOUR, value: 60 },
      { atMs: 5 * HOUR, value: 60 },
    ]);
    // A forecast that has run out (its last point not after now) says nothing either.
    f.observe(3 * HOUR, 70);
    expect(f.forecast(3 * HOUR, 2 * HOUR)).toEqual([]);
  });

  test('blended with the named forecaster by measured error: a good published forecast carries the blend, one that runs out leaves it to the rest', () => {
    // A signal with no daily shape to learn (a random walk around 250 g, as wind makes it): history says little
    // a few hours ahead, a published forecast that knows it says much.
    const rng = seededRng(7);
    const signal: number[] = [250];
    for (let i = 1; i < (6 * DAY) / STEP; i++) signal.push(Math.min(500, Math.max(20, signal[i - 1] + (rng() - 0.5) * 40)));
    const valueAt = (ms: number) => signal[Math.min(signal.length - 1, Math.floor(ms / STEP))];
    // Published at each observation: the truth ahead, within ±5 g, 48 h long.
    let cutOffMs = Infinity;
    const published = (nowMs: number): Point[] | undefined => {
      if (nowMs >= cutOffMs) return undefined;
      const noise = seededRng(nowMs / STEP + 1);
      return Array.from({ length: 96 }, (_, k) => ({ atMs: nowMs + (k + 1) * STEP, value: valueAt(nowMs + (k + 1) * STEP) + (noise() - 0.5) * 10 }));
    };
    const grid = { stepMs: STEP };
    const plain = makeForecaster('blend', grid);
    const withPublished = blendWithPublished(makeForecaster('blend', grid), grid, published).forecaster;
    const fourDays = (4 * DAY) / STEP;
    for (let i = 0; i < fourDays; i++) {
      plain.observe(i * STEP, signal[i]);
      withPublished.observe(i * STEP, signal[i]);
    }
    const plainError = plain.recentError(6 * HOUR)!;
    const blendedError = withPublished.recentError(6 * HOUR)!;
    expect(plainError).toBeGreaterThan(20);
    expect(blendedError).toBeLessThan(plainError / 3);
    // Its forecast 6 h ahead is the published one's, nearly.
    const now = (fourDays - 1) * STEP;
    const sixHours = withPublished.forecast(now, 6 * HOUR).at(-1)!;
    expect(Math.abs(sixHours.value - valueAt(now + 6 * HOUR))).toBeLessThan(10);
    // The feed stops: once its last forecast has run out the blend is the named forecaster's alone.
    cutOffMs = now + STEP;
    for (let i = fourDays; i < fourDays + 100; i++) {
      plain.observe(i * STEP, signal[i]);
      withPublished.observe(i * STEP, signal[i]);
    }
    const later = (fourDays + 99) * STEP;
    expect(withPublished.forecast(later, 6 * HOUR)).toEqual(plain.forecast(later, 6 * HOUR));
  });
});

describe('polling a published forecast', () => {
  test('the URL is filled in at each poll; the forecast counts from when it came, and how far ahead it reaches is known', async () => {
    const t0 = Date.parse('2026-03-01T12:41:00Z');
    const clock = new ManualClock(t0);
    const feed = await startJsonServer(() => ({
      body: { data: [0, 1, 2, 3].map((k) => ({ from: new Date(Date.parse('2026-03-01T12:30Z') + k * STEP).toISOString(), intensity: { forecast: 200 - 10 * k, actual: null } })) },
    }));
    cleanups.push(feed.close);
    const paths = () => feed.requests().map((r) => r.path);
    const url = `${feed.url}/intensity/{now}/fw48h`;
    const published = new PublishedForecast({ url, pollMs: 30 * MIN, clock, log: silentLog });
    cleanups.push(() => published.stop());
    expect(published.aheadMs(t0)).toBe(0);
    published.start();
    await waitUntil(() => published.at(t0), 10_000);
    expect(paths()).toEqual(['/intensity/2026-03-01T12:41Z/fw48h']);
    expect(published.at(t0 - 1)).toBeUndefined();
    expect(published.at(t0)![0]).toEqual({ atMs: Date.parse('2026-03-01T12:30Z'), value: 200 });
    expect(published.aheadMs(t0)).toBe(Date.parse('2026-03-01T14:00Z') - t0);
    expect(published.aheadMs(Date.parse('2026-03-01T15:00Z'))).toBe(0);
    // The next poll, half an hour on, asks from then.
    await waitUntil(() => (clock.pending() > 0 ? true : undefined), 10_000);
    clock.advanceTo(t0 + 30 * MIN);
    await waitUntil(() => (paths().length === 2 ? true : undefined), 10_000);
    expect(paths()[1]).toBe('/intensity/2026-03-01T13:11Z/fw48h');
  });
});
