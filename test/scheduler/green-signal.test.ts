import { afterEach, expect, test, vi } from 'vitest';
import { ClusterState } from '../../src/core';
import { loadSchedulerConfig } from '../../scheduler/config';
import { GreenSignal } from '../../scheduler/green';
import { job, nodeSpec } from '../core/fixtures';
import { ManualClock } from '../helpers/manual-clock';

const HOUR = 3_600_000;
const STEP = 15 * 60_000;
// Inside the pinned excerpt (2020-10-30 to 11-01); the service warms its forecaster on the two days before.
const START = Date.parse('2020-10-31T12:00:00Z');

let signal: GreenSignal | undefined;
afterEach(() => signal?.stop());

function started() {
  const config = loadSchedulerConfig({}, { carbonFile: 'test/fixtures/gb_ci-excerpt.csv', greenStepMs: STEP });
  const cluster = new ClusterState();
  for (let i = 0; i < 4; i++) cluster.upsertNode(nodeSpec(`n${i}`));
  const clock = new ManualClock(START);
  signal = new GreenSignal(config, cluster, clock);
  signal.start();
  return { signal, clock };
}

test('deferral plans cut their forecast from one made at the last observation, not one a job', () => {
  const { signal, clock } = started();
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

test('the cut forecast starts with the value in force at the time asked and keeps the grid after it', () => {
  const { signal } = started();
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
