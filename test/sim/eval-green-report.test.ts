import { expect, test } from 'vitest';
import { emittedMoreBeyondNoise, summarise, waitedBeyondNoise, type GreenWindow } from '../../src/sim/eval-green-report';

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: readonly number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1 || 1));

const window = (start: string, othersMeanWaitS: number, baselineOthersWaitMeanS: number, baselineOthersWaitSdS: number, savedPairs = [1], oracleSavedPairs = [2]): GreenWindow => ({
  start,
  savedPct: 1,
  oracleSavedPct: 2,
  spatialSavedPct: 0,
  carbonPerJobG: 10,
  baselineCarbonPerJobG: 10.1,
  oracleCarbonPerJobG: 9.9,
  greenShare: 0.5,
  baselineGreenShare: 0.5,
  meanDelayS: 100,
  deadlineMisses: 0,
  oracleDeadlineMisses: 0,
  othersMeanWaitS,
  baselineOthersMeanWaitS: baselineOthersWaitMeanS,
  baselineOthersWaitMeanS,
  baselineOthersWaitSdS,
  othersWaitExtraMeanS: othersMeanWaitS - baselineOthersWaitMeanS,
  othersWaitExtraSdS: 1,
  othersWaitPairs: [[othersMeanWaitS, baselineOthersWaitMeanS]],
  savedPairsMeanPct: mean(savedPairs),
  savedPairsSdPct: sd(savedPairs),
  savedPairs,
  oracleSavedPairsMeanPct: mean(oracleSavedPairs),
  othersWaitByPool: {},
  deferrableJobs: 10,
});

test("a window's other jobs waited longer beyond noise only above green-blind's mean by more than two standard deviations, and longer than green-blind on the same workloads", () => {
  expect(waitedBeyondNoise(window('a', 44, 35, 5))).toBe(false);
  expect(waitedBeyondNoise(window('b', 45.01, 35, 5))).toBe(true);
  // Without noise runs (sd 0) any longer wait counts.
  expect(waitedBeyondNoise(window('c', 32.93, 32.92, 0))).toBe(true);
  expect(waitedBeyondNoise(window('d', 32.92, 32.92, 0))).toBe(false);
  // Green-blind's own run outside its band, and green-aware's the same on every workload (GB, 30 nodes, seed 2,
  // the super pool): above the band, but no longer than green-blind.
  expect(waitedBeyondNoise({ ...window('e', 0.8, 0.12, 0.28), othersWaitExtraMeanS: 0 })).toBe(false);
  expect(waitedBeyondNoise({ ...window('f', 0.8, 0.12, 0.28), othersWaitExtraMeanS: 0.01 })).toBe(true);
});

test('the summary counts the windows beyond noise and averages the noise band', () => {
  const s = summarise([window('a', 173.76, 167.64, 2.17), window('b', 168, 167.64, 2.17), window('c', 41.98, 35.63, 5.31)]);
  expect(s.othersWaitAboveNoise).toBe(1);
  expect(s.baselineOthersWaitMeanS).toBeCloseTo((167.64 * 2 + 35.63) / 3, 2);
  expect(s.baselineOthersWaitSdS).toBeCloseTo((2.17 * 2 + 5.31) / 3, 2);
  // Green-aware's extra wait on the same workloads, averaged over windows like the rest.
  expect(s.othersWaitExtraMeanS).toBeCloseTo((6.12 + 0.36 + 6.35) / 3, 2);
  expect(s.othersWaitExtraSdS).toBe(1);
});

test('a window emitted more than green-blind beyond noise only when its savings on the same workloads are below zero by more than two standard errors', () => {
  // GB, a failure every 100 h per node: -0.16% on the window's workload, 0.03% ± 0.33% over nine.
  const lottery = [-0.16, 0.23, -0.26, 0.31, -0.39, -0.37, 0.05, 0.49, 0.36];
  expect(emittedMoreBeyondNoise(window('a', 0, 0, 0, lottery))).toBe(false);
  // The same spread, every saving 0.3 points lower: the mean (-0.27%) is 2.5 standard errors below zero.
  expect(emittedMoreBeyondNoise(window('b', 0, 0, 0, lottery.map((x) => x - 0.3)))).toBe(true);
  // Below zero on every workload, by little: a planner's doing, not a lottery.
  expect(emittedMoreBeyondNoise(window('c', 0, 0, 0, [-0.02, -0.03, -0.02]))).toBe(true);
  // One workload cannot tell.
  expect(emittedMoreBeyondNoise(window('d', 0, 0, 0, [-0.5]))).toBeUndefined();
});

test("the summary takes the savings over the same workloads too, and the live forecaster's share of the oracle's there", () => {
  const s = summarise([window('a', 0, 0, 0, [0.2, 0.3], [0.5, 0.6]), window('b', 0, 0, 0, [-0.4, -0.5], [0.1, 0.2])]);
  expect(s.savedPairsMeanPct).toBeCloseTo(-0.1, 2);
  expect(s.oracleSavedPairsMeanPct).toBeCloseTo(0.35, 2);
  expect(s.minSavedPairsMeanPct).toBeCloseTo(-0.45, 2);
  expect(s.liveOfOraclePairsPct).toBeCloseTo(-28.6, 1);
  expect(s.emittedMoreBeyondNoise).toBe(1);
  // A window without noise runs: whether it emitted more beyond noise cannot be told.
  expect(summarise([window('a', 0, 0, 0, [0.2, 0.3]), window('b', 0, 0, 0, [-0.4])]).emittedMoreBeyondNoise).toBeNull();
});

test('the summary counts, pool by pool, the windows whose other jobs waited longer beyond noise there', () => {
  const pool = (aware: number, blindMean: number, blindSd: number, extra: number) => ({ othersMeanWaitS: aware, baselineOthersMeanWaitS: blindMean, baselineOthersWaitMeanS: blindMean, baselineOthersWaitSdS: blindSd, othersWaitExtraMeanS: extra, othersWaitExtraSdS: 0.5 });
  // DE July, seed 3, 30 nodes: over all pools 238.19 s against 238.25 (the GPU pool's gangs wait ten minutes under
  // both), while the CPU pool's other jobs waited 1.45 s on the window's workload and 4.1 s on average against 1.47.
  const a = { ...window('a', 238.19, 242.5, 5.4), othersWaitByPool: { general: pool(4.29, 1.47, 0.45, 2.66), intelligent: pool(601.96, 611.6, 13.1, 0) } };
  const b = { ...window('b', 239.23, 242.5, 5.4), othersWaitByPool: { general: pool(1.45, 1.47, 0.45, 0.1), intelligent: pool(601.96, 611.6, 13.1, 0) } };
  const s = summarise([a, b]);
  expect(s.othersWaitAboveNoise).toBe(0);
  expect(s.othersWaitAboveNoiseByPool).toEqual({ general: 1, intelligent: 0, super: 0 });
  expect(s.othersWaitExtraMeanSByPool).toEqual({ general: 1.38, intelligent: 0 });
  // A pool that is not in every window has no mean over windows.
  const c = { ...window('c', 10, 10, 1), othersWaitByPool: { general: pool(1, 1, 0.1, 0) } };
  expect(summarise([a, c]).othersWaitExtraMeanSByPool).toEqual({ general: 1.33 });
});
