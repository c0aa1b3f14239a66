import { expect, test } from 'vitest';
import { noisyPublishedForecast } from '../../src/sim/published-forecast';

const HOUR = 3_600_000;
const STEP = 30 * 60_000;

test("eval:green's stand-in published forecast: the recorded future off by the mean error asked for, more so further ahead, the same forecast for one issue", () => {
  const truth = (t: number) => 200 + 80 * Math.sin((2 * Math.PI * t) / (24 * HOUR));
  const published = noisyPublishedForecast({ valueAt: truth, stepMs: STEP }, { meanErrorG: 25, seed: 3 });
  const byHorizon = new Map<number, number[]>();
  let all = 0;
  let n = 0;
  // 400 issues, half an hour apart.
  for (let issue = 0; issue < 400; issue++) {
    const now = issue * STEP + 7 * 60_000;
    const points = published(now);
    expect(points).toHaveLength(96);
    expect(points[0].atMs).toBe(issue * STEP + STEP);
    for (const p of points) {
      const error = Math.abs(p.value - truth(p.atMs));
      const h = Math.round((p.atMs - issue * STEP) / HOUR);
      byHorizon.set(h, [...(byHorizon.get(h) ?? []), error]);
      all += error;
      n++;
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  expect(all / n).toBeGreaterThan(25 * 0.85);
  expect(all / n).toBeLessThan(25 * 1.15);
  expect(mean(byHorizon.get(3)!)).toBeLessThan(mean(byHorizon.get(24)!) / 2);
  expect(mean(byHorizon.get(24)!)).toBeLessThan(mean(byHorizon.get(48)!));
  // Asked again within the same half-hour, or after others were asked: the same forecast.
  const again = noisyPublishedForecast({ valueAt: truth, stepMs: STEP }, { meanErrorG: 25, seed: 3 });
  expect(again(5 * STEP + 1)).toEqual(published(5 * STEP + 29 * 60_000));
});
