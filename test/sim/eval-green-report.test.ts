import { expect, test } from 'vitest';
import { summarise, waitedBeyondNoise, type GreenWindow } from '../../src/sim/eval-green-report';

const window = (start: string, othersMeanWaitS: number, baselineOthersWaitMeanS: number, baselineOthersWaitSdS: number): GreenWindow => ({
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
  deferrableJobs: 10,
});

test("a window's other jobs waited longer beyond noise only above green-blind's mean by more than two standard deviations", () => {
  expect(waitedBeyondNoise(window('a', 44, 35, 5))).toBe(false);
  expect(waitedBeyondNoise(window('b', 45.01, 35, 5))).toBe(true);
  // Without noise runs (sd 0) any longer wait counts.
  expect(waitedBeyondNoise(window('c', 32.93, 32.92, 0))).toBe(true);
  expect(waitedBeyondNoise(window('d', 32.92, 32.92, 0))).toBe(false);
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
