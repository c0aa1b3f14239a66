import { mkdtempSync, writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ClusterState } from '../../src/core';
import { loadSchedulerConfig } from '../../scheduler/config';
import { GreenSignal } from '../../scheduler/green';
import { job, nodeSpec } from '../core/fixtures';
import { startJsonServer } from '../helpers/json-server';
import { ManualClock } from '../helpers/manual-clock';
import { seededRng } from '../../src/sim/rng';
import { greenHistorySchema, type GreenHistory } from '../../src/protocol';
import { ConfigError } from '../../src/lifecycle';
import { waitUntil } from '../../harness/wait';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const STEP = 15 * 60_000;
// Inside the pinned excerpt (2020-10-30 to 11-01); the service warms its forecaster on the two days before.
const START = Date.parse('2020-10-31T12:00:00Z');

let signal: GreenSignal | undefined;
afterEach(() => signal?.stop());

/** A signal on the pinned excerpt, warmed on it as the service warms it (restore, without a stored history), then started. */
async function started() {
  const config = loadSchedulerConfig({}, { carbonFile: 'test/fixtures/gb_ci-excerpt.csv', greenStepMs: STEP });
  const cluster = new ClusterState();
  for (let i = 0; i < 4; i++) cluster.upsertNode(nodeSpec(`n${i}`));
  const clock = new ManualClock(START);
  signal = new GreenSignal(config, cluster, clock);
  await signal.restore();
  signal.start();
  return { signal, clock };
}

test('deferral plans cut their forecast from one made at the last observation, not one a job', async () => {
  const { signal, clock } = await started();
  const forecast = vi.spyOn(signal.forecaster, 'forecast');
  const deferrable = (i: number) => job({ id: `d${i}`, walltimeSeconds: 3600, deferrable: { maxDelaySeconds: 12 * 3600 }, submittedAtMs: clock.now() });
  for (let i = 0; i < 20; i++) signal.planner.hold(deferrable(i), clock.now() + i);
  expect(forecast).toHaveBeenCalledTimes(1);
  // A new observation: the next plan asks for a new forecast, made at that observation.
  clock.advanceTo(START + STEP);
  signal.planner.hold(deferrable(20), clock.now() + 1);
  expect(forecast).toHaveBeenCalledTimes(2);
  expect(forecast.mock.calls[1][0]).toBe(START + STEP);
});

test('the cut forecast starts with the value in force at the time asked and keeps the grid after it', async () => {
  const { signal } = await started();
  const whole = signal.forecaster.forecast(START, 12 * HOUR);
  const planned = [START, START + 7 * 60_000, START + 3 * HOUR + 1].map((fromMs) => ({ fromMs, points: signal.planForecast(fromMs, START + 12 * HOUR) }));
  for (const { fromMs, points } of planned) {
    expect(points[0].atMs).toBe(fromMs);
    const inForce = whole.filter((p) => p.atMs <= fromMs).at(-1)!;
    expect(points[0].value).toBe(inForce.value);
    expect(points.slice(1)).toEqual(whole.filter((p) => p.atMs > fromMs && p.atMs <= START + 12 * HOUR));
  }
});

test('before the first observation there is no forecast to plan against', () => {
  const config = loadSchedulerConfig({}, { carbonFile: 'test/fixtures/gb_ci-excerpt.csv', greenStepMs: STEP });
  const idle = new GreenSignal(config, new ClusterState(), new ManualClock(START));
  expect(idle.planForecast(START, START + HOUR)).toEqual([]);
});

/** Lets the saves started by a timer finish: the store in memory answers at once, so one turn of the event loop is enough (no wall-clock wait). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

/** A history store in memory, as the qy-green bucket holds it. */
class MemoryHistory {
  stored: GreenHistory | undefined;
  saves: GreenHistory[] = [];
  failLoad = false;
  async load() {
    if (this.failLoad) throw new Error('timeout');
    return this.stored;
  }
  async save(h: GreenHistory) {
    this.saves.push(h);
    this.stored = h;
  }
}

/** A daily cycle with a little noise, `days` of it before `endMs`, one point per `stepMs`. */
function dailyCycle(endMs: number, days: number, stepMs: number): [number, number][] {
  const rng = seededRng(7);
  const points: [number, number][] = [];
  for (let t = endMs - days * DAY; t < endMs; t += stepMs) points.push([t, 200 + 120 * Math.sin((2 * Math.PI * t) / DAY) + 10 * rng()]);
  return points;
}

function liveOnly(clock: ManualClock) {
  // No carbon file: the signal is the constant times the nodes' non-green share, as a live feed's fallback is.
  const config = loadSchedulerConfig({}, { greenStepMs: STEP, replicaId: 'replica-b' });
  const cluster = new ClusterState();
  cluster.upsertNode(nodeSpec('n0'));
  return new GreenSignal(config, cluster, clock);
}

describe('the green history (qy-green)', () => {
  test('a scheduler that starts replays the stored history: its errors are measured at once, where one without history defers nothing', async () => {
    const cold = liveOnly(new ManualClock(START));
    cold.start();
    const errorAt = (s: GreenSignal, hours: number) => s.forecasterView().errors.find((e) => e.aheadHours === hours)!.gPerKwh;
    expect(errorAt(cold, 12)).toBeNull();
    // What a cold planner holds against a forecast 12 h ahead instead: a quarter of this.
    expect(cold.forecasterView().levelGPerKwh).toBeGreaterThan(0);
    cold.stop();

    const store = new MemoryHistory();
    const points = dailyCycle(START, 8, STEP);
    // Another replica's clock ahead of this one's, and points older than 8 days: not replayed.
    store.stored = { v: 1, savedAtMs: START, savedBy: 'replica-a', points: [[START - 9 * DAY, 999], ...points, [START + STEP, 999]] };
    const clock = new ManualClock(START);
    signal = liveOnly(clock);
    expect(await signal.restore({ store, saves: () => false })).toBe(points.length);
    signal.start();
    const view = signal.forecasterView();
    expect(view.observedSince).toBe(new Date(points[0][0]).toISOString());
    // The level is the last day's mean of what was replayed: a daily cycle's mean, not its latest value.
    const lastDay = points.filter(([t]) => t > points[points.length - 1][0] - DAY);
    expect(view.levelGPerKwh).toBeCloseTo(lastDay.reduce((sum, [, v]) => sum + v, 0) / lastDay.length, -1);
    for (const hours of [1, 6, 12, 24]) expect(errorAt(signal, hours), `${hours} h`).toBeGreaterThan(0);
    // It learned the cycle: 12 h ahead its error is a fraction of the cycle's amplitude (120), not the swing of persistence.
    expect(errorAt(signal, 12)).toBeLessThan(40);
  });

  test('the replica that leads stores what it observed, at most every five minutes and one point per five minutes, the last 8 days', async () => {
    const store = new MemoryHistory();
    store.stored = { v: 1, savedAtMs: START, savedBy: 'replica-a', points: dailyCycle(START, 9, 60_000).filter(([t]) => t >= START - 8 * DAY + HOUR) };
    const clock = new ManualClock(START);
    let leads = false;
    signal = liveOnly(clock);
    await signal.restore({ store, saves: () => leads });
    signal.start();
    clock.advanceTo(START + STEP);
    expect(store.saves).toHaveLength(0);
    leads = true;
    clock.advanceTo(START + 2 * STEP);
    await settled();
    expect(store.saves).toHaveLength(1);
    const saved = store.saves[0];
    expect(saved).toMatchObject({ v: 1, savedAtMs: START + 2 * STEP, savedBy: 'replica-b' });
    expect(greenHistorySchema.safeParse(saved).success).toBe(true);
    const times = saved.points.map(([t]) => t);
    expect(times[0]).toBeGreaterThanOrEqual(START + 2 * STEP - 8 * DAY);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(5 * 60_000);
    // The stored minute points, one per five minutes, then its own observations.
    expect(times.slice(-3)).toEqual([START, START + STEP, START + 2 * STEP]);
    expect(times.length).toBeGreaterThan(8 * 24 * 12 - 24);
  });

  test('a history that cannot be read leaves the forecaster cold, and is read again before this replica stores its own over it', async () => {
    const store = new MemoryHistory();
    const older = dailyCycle(START - DAY, 2, STEP);
    store.stored = { v: 1, savedAtMs: START - DAY, savedBy: 'replica-a', points: older };
    store.failLoad = true;
    const clock = new ManualClock(START);
    signal = liveOnly(clock);
    expect(await signal.restore({ store, saves: () => true })).toBe(0);
    signal.start();
    expect(signal.forecasterView().errors.every((e) => e.gPerKwh === null)).toBe(true);
    // Still unreadable: nothing is written over it.
    clock.advanceTo(START + STEP);
    await settled();
    expect(store.saves).toHaveLength(0);
    // Readable again: the days it held are kept, before what this replica observed.
    store.failLoad = false;
    clock.advanceTo(START + 2 * STEP);
    await settled();
    expect(store.saves).toHaveLength(1);
    const own = signal.signalAt(START);
    expect(store.saves[0].points).toEqual([...older, [START, own], [START + STEP, own], [START + 2 * STEP, own]]);
  });

  test('a replica that has observed nothing stores nothing (it would wipe what is stored)', async () => {
    const store = new MemoryHistory();
    const config = loadSchedulerConfig({}, { greenStepMs: STEP });
    const clock = new ManualClock(START);
    signal = new GreenSignal(config, new ClusterState(), clock);
    await signal.restore({ store, saves: () => true });
    signal.start();
    signal.saveNow();
    clock.advanceTo(START + STEP);
    await settled();
    expect(store.saves).toHaveLength(0);
  });

  test('with a carbon file, the week before start is read from it where the restored history does not reach', async () => {
    const config = loadSchedulerConfig({}, { carbonFile: 'test/fixtures/gb_ci-excerpt.csv', greenStepMs: STEP });
    const observed = async (stored: GreenHistory | undefined) => {
      const store = new MemoryHistory();
      store.stored = stored;
      const s = new GreenSignal(config, new ClusterState(), new ManualClock(START));
      const observe = vi.spyOn(s.forecaster, 'observe');
      await s.restore({ store, saves: () => false });
      s.start();
      s.stop();
      return { times: observe.mock.calls.map(([t]) => t), since: s.forecasterView().observedSince };
    };
    const history: GreenHistory = { v: 1, savedAtMs: START, savedBy: 'replica-a', points: [[START - 3 * DAY, 100], [START - 6 * HOUR, 100]] };
    const withHistory = await observed(history);
    expect(withHistory.times.slice(0, 2)).toEqual([START - 3 * DAY, START - 6 * HOUR]);
    expect(withHistory.times[2]).toBeGreaterThan(START - 6 * HOUR);
    expect(withHistory.times.at(-1)).toBe(START);
    expect(withHistory.since).toBe(new Date(START - 3 * DAY).toISOString());
    const fileOnly = await observed(undefined);
    expect(fileOnly.times[0]).toBe(START - 8 * DAY);
    expect(fileOnly.times).toHaveLength(8 * 96 + 1);
  });
});

test('from the nodes’ green share, nothing is observed while no node is ready: a start would otherwise teach the forecaster a spike to the whole grid intensity', () => {
  const config = loadSchedulerConfig({}, { greenStepMs: STEP, carbonIntensityGPerKwh: 500 });
  const cluster = new ClusterState();
  const clock = new ManualClock(START);
  signal = new GreenSignal(config, cluster, clock);
  const observe = vi.spyOn(signal.forecaster, 'observe');
  signal.start();
  expect(observe).not.toHaveBeenCalled();
  expect(signal.forecasterView().observedSince).toBeUndefined();
  expect(signal.forecasterView().levelGPerKwh).toBeUndefined();
  // What the API shows meanwhile: the grid's intensity, as metering charges it.
  expect(signal.signalAt(START)).toBe(500);
  clock.advanceTo(START + 5_000);
  expect(observe).not.toHaveBeenCalled();
  cluster.upsertNode(nodeSpec('n0'));
  cluster.setNodeTelemetry('n0', 300, 0.6);
  // Tried again every few seconds until known, then only every step.
  clock.advanceTo(START + 10_000);
  clock.advanceTo(START + 15_000);
  clock.advanceTo(START + STEP);
  expect(observe.mock.calls).toEqual([[START + 10_000, 200], [START + STEP, 200]]);
});

test('QY_CARBON_COLUMN names the carbon file column to read; a file without one says which setting names it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qy-carbon-column-'));
  const file = join(dir, 'national-grid.csv');
  // National Grid's carbon intensity API as CSV: no header says "carbon" or "intensity".
  writeFileSync(file, 'from,to,forecast,actual,index\n2021-03-01T00:00Z,2021-03-01T00:30Z,210,205,moderate\n2021-03-01T00:30Z,2021-03-01T01:00Z,190,181,moderate\n');
  const cluster = new ClusterState();
  const clock = new ManualClock(START);
  const refused = () => new GreenSignal(loadSchedulerConfig({}, { carbonFile: file }), cluster, clock);
  expect(refused).toThrow(ConfigError);
  expect(refused).toThrow(`QY_CARBON_FILE: ${file}: expected carbon intensity (a column named like "Carbon Intensity", or name its column with QY_CARBON_COLUMN)`);
  signal = new GreenSignal(loadSchedulerConfig({ QY_CARBON_FILE: file, QY_CARBON_COLUMN: 'Actual' }), cluster, clock);
  expect(signal.carbonAt(Date.parse('2021-03-01T00:10:00Z'))).toBe(205);
  expect(signal.carbonAt(Date.parse('2021-03-01T00:40:00Z'))).toBe(181);
});

test('QY_CARBON_FORECAST_URL: the published forecast is polled from the start, blended into the forecaster, and how far ahead it reaches is a metric', async () => {
  const feed = await startJsonServer(() => ({ body: { forecast: Array.from({ length: 8 }, (_, k) => ({ atMs: START + (k + 1) * HOUR, gPerKwh: 100 + k })) } }));
  try {
    const url = `${feed.url}/forecast`;
    const config = loadSchedulerConfig({}, { carbonFile: 'test/fixtures/gb_ci-excerpt.csv', greenStepMs: STEP, carbonForecastUrl: url });
    const cluster = new ClusterState();
    const clock = new ManualClock(START);
    const registry = new Registry();
    signal = new GreenSignal(config, cluster, clock, undefined, { registry });
    const published = signal.published!;
    await signal.restore();
    expect(published.at(START)).toBeUndefined();
    signal.start();
    await waitUntil(() => published.at(START), 10_000);
    expect((await registry.getSingleMetric('qy_green_published_forecast_ahead_seconds')!.get()).values[0].value).toBe(8 * 3600);
    // GET /v1/green shows it beside the forecaster's own errors; it has not been scored yet.
    expect(signal.forecasterView().published).toEqual({ aheadHours: 8, errors: expect.arrayContaining([{ aheadHours: 6, gPerKwh: null }]) });
    // The forecaster asks it for the forecast it blends.
    const asked = vi.spyOn(published, 'at');
    clock.advanceTo(START + STEP);
    signal.forecaster.forecast(START + STEP, 6 * HOUR);
    expect(asked).toHaveBeenCalledWith(START + STEP);
  } finally {
    await feed.close();
  }
});
