import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { fileGreen } from '../../agents/collectors/green';
import { Observations, RecentLevel, createSeries, gridFrom, loadCarbonSeries, loadSeries, parseSeries, shareFromCarbon } from '../../src/green';

/**
 * test/fixtures/gb_ci-excerpt.csv: 2020-10-30 to 2020-11-01 of dos-group/lets-wait-awhile data/gb_ci.csv
 * (Wiesner et al., "Let's Wait Awhile: How Temporal Workload Shifting Can Reduce Carbon Emissions in the
 * Cloud", Middleware 2021), carbon intensity of the British grid in gCO2/kWh. It spans the change from
 * half-hourly to quarter-hourly rows on 2020-10-31.
 */
const EXCERPT = fileURLToPath(new URL('../fixtures/gb_ci-excerpt.csv', import.meta.url));
/** test/fixtures/gb_ci-2019-12-20.csv: the header and the first day (48 half-hourly rows) of the same data/gb_ci.csv. */
const FIRST_DAY = fileURLToPath(new URL('../fixtures/gb_ci-2019-12-20.csv', import.meta.url));
const MIN = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'qy-green-series-'));

describe('series', () => {
  test('a carbon-intensity CSV: kind from the header, zone-less times in UTC, the finest step of a mixed resolution', () => {
    const series = loadSeries(EXCERPT);
    const start = Date.UTC(2020, 9, 30);
    expect(series.kind).toBe('carbon');
    expect(series.daily).toBe(false);
    expect(series.points).toHaveLength(238);
    expect(series.startMs).toBe(start);
    expect(series.stepMs).toBe(15 * MIN);
    expect(series.endMs).toBe(Date.UTC(2020, 10, 1, 23, 45) + 15 * MIN);
    expect(series.valueAt(start)).toBeCloseTo(112.0722, 3);
    expect(series.valueAt(start + 29 * MIN)).toBeCloseTo(112.0722, 3);
    expect(series.valueAt(start + 30 * MIN)).toBeCloseTo(121.8297, 3);
    expect(series.valueAt(Date.UTC(2020, 9, 31, 0, 20))).toBeCloseTo(160.4956, 3);
  });

  test('the first day of the trace: half-hourly throughout, the last value held to the end of its step', () => {
    // Expected values read off the fixture's lines, not computed by the code under test.
    const series = loadSeries(FIRST_DAY);
    const start = Date.UTC(2019, 11, 20);
    expect(series.kind).toBe('carbon');
    expect(series.points).toHaveLength(48);
    expect(series.startMs).toBe(start);
    expect(series.stepMs).toBe(30 * MIN);
    expect(series.endMs).toBe(start + 24 * 60 * MIN);
    expect(series.valueAt(start + 10 * MIN)).toBeCloseTo(120.9955, 3);
    expect(series.valueAt(start + 30 * MIN)).toBeCloseTo(135.0887, 3);
    expect(series.valueAt(Date.UTC(2019, 11, 20, 23, 59))).toBeCloseTo(172.0249, 3);
  });

  test('times with a zone keep it; times without one are UTC', () => {
    const series = parseSeries('time,share\n2021-01-01T01:00:00+01:00,0.2\n2021-01-01 00:30,0.4\n2021-01-01T01:00:00,0.6\n', 'zones');
    expect(series.points.map((p) => p.atMs)).toEqual([Date.UTC(2021, 0, 1), Date.UTC(2021, 0, 1, 0, 30), Date.UTC(2021, 0, 1, 1)]);
  });

  test('shares: 0..1 as they are, percentages above 1, capped at 1', () => {
    const series = parseSeries('time,share\n2021-01-01T00:00:00Z,40\n2021-01-01T01:00:00Z,0.55\n2021-01-01T02:00:00Z,140\n', 'shares');
    expect(series.kind).toBe('share');
    expect(series.points.map((p) => p.value)).toEqual([0.4, 0.55, 1]);
    expect(series.stepMs).toBe(60 * MIN);
  });

  test('a daily profile repeats every day; before its first time of day, the last value of the day before holds', () => {
    const series = parseSeries('time,share\n06:30,0.55\n00:30,10\n18:00,30\n', 'daily');
    const at = (day: number, h: number, m: number) => Date.UTC(2026, 0, day, h, m);
    expect(series.daily).toBe(true);
    expect(series.startMs).toBe(30 * MIN);
    expect(series.endMs).toBe(30 * MIN + 86_400_000);
    expect(series.stepMs).toBe(6 * 60 * MIN);
    expect(series.valueAt(at(2, 0, 10))).toBe(0.3);
    expect(series.valueAt(at(2, 0, 30))).toBe(0.1);
    expect(series.valueAt(at(9, 6, 30))).toBe(0.55);
    expect(series.valueAt(at(9, 23, 59))).toBe(0.3);
    expect(parseSeries('time,share\n12:00,0.5\n', 'one point').stepMs).toBe(86_400_000);
  });

  test('outside a recorded span: replayed in a loop by default, or the first and last values held', () => {
    const text = 'Time,Share\n2021-01-01 00:00:00,0.2\n2021-01-01 00:30:00,0.4\n';
    const start = Date.UTC(2021, 0, 1);
    const looped = parseSeries(text, 'loop');
    const clamped = parseSeries(text, 'clamp', { outside: 'clamp' });
    expect(looped.endMs).toBe(start + 60 * MIN);
    expect([70, -10, 24 * 60 + 40].map((m) => looped.valueAt(start + m * MIN))).toEqual([0.2, 0.4, 0.4]);
    expect([70, -10, 24 * 60 + 40].map((m) => clamped.valueAt(start + m * MIN))).toEqual([0.4, 0.2, 0.4]);
  });

  test('a chosen column, whose header decides the kind', () => {
    const text = 'time,share,Carbon Intensity\n2021-01-01T00:00:00Z,0.5,210\n2021-01-01T00:30:00Z,0.6,190\n';
    expect(parseSeries(text, 'both').kind).toBe('share');
    const carbon = parseSeries(text, 'both', { column: 'carbon intensity' });
    expect(carbon.kind).toBe('carbon');
    expect(carbon.points.map((p) => p.value)).toEqual([210, 190]);
    expect(() => parseSeries(text, 'both', { column: 'price' })).toThrow(/no column price/);
  });

  test('bad files are refused with the reason', () => {
    expect(() => parseSeries('Time,Carbon Intensity\n2021-01-01 00:00:00,\n', 'f')).toThrow(/f: no values in column Carbon Intensity/);
    expect(() => parseSeries('Time,Carbon Intensity\n2021-01-01 00:00:00,n/a\n', 'f')).toThrow(/f: bad carbon intensity n\/a$/);
    expect(() => parseSeries('time,share\n2021-01-01 00:00:00,-1\n', 'f')).toThrow(/bad share -1/);
    expect(() => parseSeries('time,share\nnoon,0.5\n2021-01-01 00:00:00,0.5\n', 'f')).toThrow(/bad time noon/);
    expect(() => parseSeries('time,share\n06:00,0.5\n25:00,0.5\n', 'f')).toThrow(/bad time 25:00/);
    expect(() => parseSeries('time,share\n', 'f')).toThrow(/no rows/);
    expect(() => parseSeries('time,share\n2021-01-01 00:00:00,0.5\n', 'f')).toThrow(/two distinct times/);
  });

  test('gaps in a trace: rows with a blank value are left out, the value before holding over them', () => {
    const series = parseSeries('Time,Carbon Intensity\n2021-01-01 00:00:00,200\n2021-01-01 00:30:00,\n2021-01-01 01:00:00,100\n2021-01-01 01:30:00,120\n', 'gaps');
    expect(series.points.map((p) => p.value)).toEqual([200, 100, 120]);
    expect(series.skipped).toBe(1);
    expect(series.stepMs).toBe(30 * MIN);
    expect(series.valueAt(Date.UTC(2021, 0, 1, 0, 45))).toBe(200);
  });

  /** Exports of other tools, as they come: the carbon intensity column is found by its header. */
  const EXPORTS = {
    // electricityMaps: not the second column (the country), nor the carbon-free percentage.
    electricityMaps: [
      'Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA),Carbon-free energy percentage (CFE%),Renewable energy percentage (RE%),Data Source,Data Estimated,Data Estimation Method',
      '2021-01-01 00:00:00,Sweden,Sweden,SE,12.5,30.1,98.1,70.2,entsoe.eu,false,',
      '2021-01-01 01:00:00,Sweden,Sweden,SE,14,31.6,97.9,69.5,entsoe.eu,false,',
    ].join('\n'),
    // Per fuel, derived from the EIA's grid monitor: avg_CI, not the first fuel; a row blank in every column.
    perFuel: [
      'timestamp,WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI',
      '2022-01-01 00:00:00+00:00,3130.0,1367.0,2304.0,44.0,6764.0,19.0,2265.0,189.0,222.3',
      '2022-01-01 01:00:00+00:00,,,,,,,,,',
      '2022-01-01 02:00:00+00:00,2657.0,0.0,2859.0,41.0,9221.0,19.0,2265.0,1111.0,271.9',
    ].join('\n'),
  };

  test.each([
    { name: 'electricityMaps', values: [12.5, 14], skipped: 0 },
    { name: 'perFuel', values: [222.3, 271.9], skipped: 1 },
  ] as const)('an export read as it is ($name): the carbon intensity column found by its header', ({ name, values, skipped }) => {
    const series = parseSeries(EXPORTS[name], name);
    expect(series.kind).toBe('carbon');
    expect(series.points.map((p) => p.value)).toEqual(values);
    expect(series.skipped).toBe(skipped);
  });

  test('an electricityMaps export: hourly; its carbon-free percentage, named, is a share', () => {
    expect(parseSeries(EXPORTS.electricityMaps, 'em').stepMs).toBe(60 * MIN);
    // Named, a carbon-free percentage is a share, not an intensity.
    const cfe = parseSeries(EXPORTS.electricityMaps, 'em', { column: 'Carbon-free energy percentage (CFE%)' });
    expect(cfe.kind).toBe('share');
    expect(cfe.points[0].value).toBeCloseTo(0.981, 12);
    expect(cfe.points[1].value).toBeCloseTo(0.979, 12);
  });

  test('CI names a carbon intensity only as a word: a header that only contains the letters names no signal', () => {
    // A "CIRCUIT" or "pci" column is not the value; the share after it is.
    expect(parseSeries('time,circuit_pci,share\n2021-01-01 00:00:00,5,0.4\n2021-01-01 01:00:00,6,0.5\n', 'f').kind).toBe('share');
  });

  test('a carbon file: a named column is read as the intensity, a file of shares is refused naming it', () => {
    const file = join(dir, 'named.csv');
    writeFileSync(file, 'time,value\n2021-01-01T00:00:00Z,210\n2021-01-01T00:30:00Z,190\n');
    expect(() => loadCarbonSeries(file)).toThrow(`${file}: expected carbon intensity`);
    const named = loadCarbonSeries(file, { column: 'value' });
    expect(named.kind).toBe('carbon');
    expect(named.points.map((p) => p.value)).toEqual([210, 190]);
  });

  test('without a signal header, a column of numbers with gaps is the value; one blank in every row is not', () => {
    const series = parseSeries('time,note,reading\n2021-01-01T00:00:00Z,,0.2\n2021-01-01T00:30:00Z,,\n2021-01-01T01:00:00Z,,0.4\n', 'blank note');
    expect(series.points.map((p) => p.value)).toEqual([0.2, 0.4]);
    expect(series.skipped).toBe(1);
  });

  test('Unix times in seconds or milliseconds; a timestamp column is not taken for the value', () => {
    const seconds = parseSeries('datetime,timestamp,zone_name,carbon_intensity_avg\n2021-01-01T00:00:00Z,1609459200,DE,311\n2021-01-01T01:00:00Z,1609462800,DE,305\n', 'old export');
    expect(seconds.kind).toBe('carbon');
    expect(seconds.points.map((p) => p.value)).toEqual([311, 305]);
    const unix = parseSeries('t,Carbon Intensity\n1609459200,311\n1609462800,305\n', 'unix s');
    expect(unix.points.map((p) => p.atMs)).toEqual([Date.UTC(2021, 0, 1), Date.UTC(2021, 0, 1, 1)]);
    const ms = parseSeries('t,Carbon Intensity\n1609459200000,311\n1609462800000,305\n', 'unix ms');
    expect(ms.points.map((p) => p.atMs)).toEqual([Date.UTC(2021, 0, 1), Date.UTC(2021, 0, 1, 1)]);
  });

  test('a stray row does not make the step finer than the trace; a change of resolution does', () => {
    const start = Date.UTC(2021, 0, 1);
    const row = (min: number, v: number) => `${new Date(start + min * MIN).toISOString()},${v}`;
    // 300 quarter-hours with one stray row a minute after one of them.
    const rows = Array.from({ length: 300 }, (_, i) => row(i * 15, 100 + (i % 7)));
    rows.splice(101, 0, row(100 * 15 + 1, 50));
    expect(parseSeries(['Time,Carbon Intensity', ...rows].join('\n'), 'stray').stepMs).toBe(15 * MIN);
    // Half-hourly, then quarter-hourly for the last tenth: the finer step.
    const mixed = [...Array.from({ length: 270 }, (_, i) => row(i * 30, 100)), ...Array.from({ length: 60 }, (_, i) => row(270 * 30 + i * 15, 90))];
    expect(parseSeries(['Time,Carbon Intensity', ...mixed].join('\n'), 'mixed').stepMs).toBe(15 * MIN);
  });

  test('a series from points in any order', () => {
    const series = createSeries([{ atMs: 2000, value: 3 }, { atMs: 0, value: 1 }, { atMs: 1000, value: 2 }], { name: 'p', kind: 'carbon', outside: 'clamp' });
    expect(series.points.map((p) => p.value)).toEqual([1, 2, 3]);
    expect([-5, 999, 1000, 99_999].map(series.valueAt)).toEqual([1, 1, 2, 3]);
  });

  test('the grid from a time: the time itself, then the grid times after it up to the end', () => {
    expect(gridFrom(10, 100, 30)).toEqual([10, 30, 60, 90]);
    expect(gridFrom(30, 90, 30)).toEqual([30, 60, 90]);
    expect(gridFrom(10, 100, 30, 5)).toEqual([10, 35, 65, 95]);
    expect(gridFrom(10, 5, 30)).toEqual([10]);
  });

  test('the share equivalent to a carbon intensity, clamped to 0..1', () => {
    expect([0, 225, 450, 900, -10].map((ci) => shareFromCarbon(ci))).toEqual([1, 0.5, 0, 0, 1]);
    expect(shareFromCarbon(100, 200)).toBe(0.5);
  });

  test("the agents' fileGreen reads a carbon-intensity file as a share", () => {
    const file = join(dir, 'ci.csv');
    writeFileSync(file, 'Time,Carbon Intensity\n2021-01-01 00:00:00,90\n2021-01-01 00:30:00,360\n');
    const green = fileGreen(file);
    expect(green.shareAt(Date.UTC(2021, 0, 1, 0, 10))).toBeCloseTo(0.8, 12);
    expect(green.shareAt(Date.UTC(2021, 0, 1, 0, 40))).toBeCloseTo(0.2, 12);
    expect(green.describe()).toBe(`${file} (2 points, carbon intensity as share)`);
  });
});

describe('Observations', () => {
  test('since(t): the points made at or after t, though older ones stay kept until dropped in bulk; out of order throws', () => {
    const seen = new Observations('test', 10);
    for (let t = 0; t <= 12; t++) seen.push(t, t * 10);
    // Points older than keepMs (10) are dropped only once they are more than half of those kept.
    expect(seen.kept[0].atMs).toBe(0);
    expect(seen.since(2).map((p) => p.atMs)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(seen.since(2.5)[0].atMs).toBe(3);
    expect(seen.since(13)).toEqual([]);
    expect(seen.since(-5)).toHaveLength(13);
    expect(seen.at(7.5)).toBe(70);
    expect(() => seen.push(11, 0)).toThrow('test: observation at 11 is before the last one at 12');
  });
});

describe('RecentLevel', () => {
  test('the time-weighted mean over the last span, each value holding until the next; the only value while alone; out of order throws', () => {
    const level = new RecentLevel(10);
    expect(level.mean).toBeUndefined();
    level.push(0, 100);
    expect(level.mean).toBe(100);
    // 100 for 2, then 400 for 1: weighted by time, not by count.
    level.push(2, 400);
    level.push(3, 0);
    expect(level.mean).toBe((100 * 2 + 400 * 1) / 3);
    // At 14 the span is [4, 14]: 0 from 4 to 12, then 50 to 14 (the step begun at 3 counts from 4 only).
    level.push(12, 50);
    level.push(14, 50);
    expect(level.mean).toBe((0 * 8 + 50 * 2) / 10);
    expect(() => level.push(13, 1)).toThrow('recent level: observation at 13 is before the last one at 14');
  });

  test('over thousands of irregular observations it equals the mean computed afresh', () => {
    const level = new RecentLevel(500);
    const points: { atMs: number; value: number }[] = [];
    let t = 0;
    for (let i = 0; i < 5_000; i++) {
      t += 1 + ((i * 7919) % 13);
      const value = (i * 104_729) % 997;
      level.push(t, value);
      points.push({ atMs: t, value });
    }
    const fromMs = t - 500;
    let area = 0;
    for (let i = 0; i + 1 < points.length; i++) {
      const a = Math.max(points[i].atMs, fromMs);
      const b = points[i + 1].atMs;
      if (b > a) area += points[i].value * (b - a);
    }
    expect(level.mean).toBeCloseTo(area / 500, 6);
  });
});
