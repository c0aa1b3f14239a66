import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PALETTE, escapeHtml, lineChart, page, table } from '../report/html';
import { POOLS, type Pool } from '../protocol';

/** Other jobs' wait in one pool, or over all of them (a window's own figures). */
export interface PoolWait {
  /** Green-aware's and green-blind's on the window's workload. */
  othersMeanWaitS: number;
  baselineOthersMeanWaitS: number;
  /** Green-blind's over its run and its noise runs (deferrable jobs arriving up to a minute later): mean and sd. */
  baselineOthersWaitMeanS: number;
  baselineOthersWaitSdS: number;
  /**
   * Green-aware's less green-blind's on the same workload (the window's and each noise run's): their mean and
   * sd. Green-aware's own run moves with the workload too, so one run of it against green-blind's band can
   * mislead; the pairs do not.
   */
  othersWaitExtraMeanS: number;
  othersWaitExtraSdS: number;
}

/** One window of eval:green: green-aware with the live forecaster and with the oracle, against green-blind; other jobs' wait over all pools. */
export interface GreenWindow extends PoolWait {
  /** The window's first day (UTC). */
  start: string;
  savedPct: number;
  oracleSavedPct: number;
  spatialSavedPct: number;
  carbonPerJobG: number;
  baselineCarbonPerJobG: number;
  oracleCarbonPerJobG: number;
  greenShare: number;
  baselineGreenShare: number;
  meanDelayS: number;
  deadlineMisses: number;
  oracleDeadlineMisses: number;
  /** The pairs behind the wait over all pools: [green-aware, green-blind] others' mean wait (s), the window's workload first. */
  othersWaitPairs: [number, number][];
  /**
   * Carbon saved by green-aware against green-blind on the same workloads (the window's and each noise run's,
   * savedPct for the first), and their mean and sd: where node failures kill and rerun jobs, which jobs they
   * hit differs between two schedules, and one run's saving is as much that lottery as the planner's doing.
   */
  savedPairsMeanPct: number;
  savedPairsSdPct: number;
  savedPairs: number[];
  /** The oracle's mean saving on the same workloads. */
  oracleSavedPairsMeanPct: number;
  /** Other jobs' wait pool by pool (the pools where they ran in every run), as the window's figures are over all of them. */
  othersWaitByPool: Partial<Record<Pool, PoolWait>>;
  deferrableJobs: number;
}

/** `x` to `digits` decimals (the figures of the reports and the JSON line). */
export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const mean = (xs: readonly number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Whether green-aware's other jobs waited longer than noise explains: above the mean of green-blind's runs
 * (its own and those with deferrable jobs arriving up to a minute later) by more than two standard deviations,
 * and longer than green-blind's on the same workloads on average (to the report's hundredth of a second). A
 * run of green-blind's own can fall outside its band too: on 30 nodes (GB, seed 2) the super pool's one job
 * that waited did so under both policies on every workload, and green-aware, no longer on any, read as beyond.
 */
export const waitedBeyondNoise = (w: PoolWait) => w.othersMeanWaitS > w.baselineOthersWaitMeanS + 2 * w.baselineOthersWaitSdS && w.othersWaitExtraMeanS > 0;

/**
 * Whether green-aware emitted more than green-blind beyond noise in a window: the mean of its savings on the
 * same workloads below zero by more than two standard errors. Undefined without noise runs (one workload
 * cannot tell the planner's doing from the lottery of which jobs a failure kills).
 */
export function emittedMoreBeyondNoise(w: GreenWindow): boolean | undefined {
  const n = w.savedPairs.length;
  if (n < 2) return undefined;
  return w.savedPairsMeanPct + (2 * w.savedPairsSdPct) / Math.sqrt(n) < 0;
}

/**
 * The final JSON line's fields over windows: the means of each window's figures under the names one window
 * always had (carbonSavedPct is the mean of the windows' savings), the oracle's mean saving, the live
 * forecaster's share of it (liveOfOraclePct), the worst and median window, deadline misses summed, and the
 * windows whose other jobs waited longer beyond noise (othersWaitAboveNoise); and the same over the noise runs'
 * workloads too: the mean savings of green-aware and the oracle there (savedPairsMeanPct, oracleSavedPairsMeanPct,
 * their ratio liveOfOraclePairsPct), the worst window's (minSavedPairsMeanPct), and the windows that emitted more
 * than green-blind beyond noise (emittedMoreBeyondNoise; null without noise runs); and other jobs' wait pool by
 * pool: the windows beyond noise in each pool (othersWaitAboveNoiseByPool) and each pool's mean extra wait on
 * the same workloads (othersWaitExtraMeanSByPool, for the pools whose other jobs ran in every window).
 */
export function summarise(windows: readonly GreenWindow[]) {
  const of = (f: (w: GreenWindow) => number, digits = 2) => round(mean(windows.map(f)), digits);
  const carbonSavedPct = of((w) => w.savedPct);
  const oracleSavedPct = of((w) => w.oracleSavedPct);
  const savedPairsMeanPct = of((w) => w.savedPairsMeanPct);
  const oracleSavedPairsMeanPct = of((w) => w.oracleSavedPairsMeanPct);
  return {
    carbonPerJobG: of((w) => w.carbonPerJobG),
    baselineCarbonPerJobG: of((w) => w.baselineCarbonPerJobG),
    carbonSavedPct,
    greenShare: of((w) => w.greenShare, 4),
    baselineGreenShare: of((w) => w.baselineGreenShare, 4),
    meanDelayS: of((w) => w.meanDelayS),
    deadlineMisses: windows.reduce((a, w) => a + w.deadlineMisses, 0),
    othersMeanWaitS: of((w) => w.othersMeanWaitS),
    baselineOthersMeanWaitS: of((w) => w.baselineOthersMeanWaitS),
    baselineOthersWaitMeanS: of((w) => w.baselineOthersWaitMeanS),
    baselineOthersWaitSdS: of((w) => w.baselineOthersWaitSdS),
    othersWaitAboveNoise: windows.filter(waitedBeyondNoise).length,
    othersWaitExtraMeanS: of((w) => w.othersWaitExtraMeanS),
    othersWaitExtraSdS: of((w) => w.othersWaitExtraSdS),
    spatialCarbonSavedPct: of((w) => w.spatialSavedPct),
    deferrableJobs: windows[0]?.deferrableJobs ?? 0,
    oracleSavedPct,
    liveOfOraclePct: oracleSavedPct > 0 ? round((carbonSavedPct / oracleSavedPct) * 100, 1) : null,
    minSavedPct: round(Math.min(...windows.map((w) => w.savedPct))),
    medianSavedPct: round(median(windows.map((w) => w.savedPct))),
    windows: windows.length,
    oracleDeadlineMisses: windows.reduce((a, w) => a + w.oracleDeadlineMisses, 0),
    savedPairsMeanPct,
    oracleSavedPairsMeanPct,
    liveOfOraclePairsPct: oracleSavedPairsMeanPct > 0 ? round((savedPairsMeanPct / oracleSavedPairsMeanPct) * 100, 1) : null,
    minSavedPairsMeanPct: round(Math.min(...windows.map((w) => w.savedPairsMeanPct))),
    emittedMoreBeyondNoise: windows.some((w) => emittedMoreBeyondNoise(w) === undefined) ? null : windows.filter((w) => emittedMoreBeyondNoise(w)).length,
    othersWaitAboveNoiseByPool: Object.fromEntries(POOLS.map((pool) => [pool, windows.filter((w) => w.othersWaitByPool[pool] && waitedBeyondNoise(w.othersWaitByPool[pool])).length])),
    othersWaitExtraMeanSByPool: Object.fromEntries(POOLS.flatMap((pool) => (windows.every((w) => w.othersWaitByPool[pool]) ? [[pool, of((w) => w.othersWaitByPool[pool]!.othersWaitExtraMeanS)]] : []))),
  };
}

export interface GreenReport {
  settings: Record<string, string | number | boolean>;
  summary: ReturnType<typeof summarise>;
  windows: GreenWindow[];
}

/** The HTML report: the settings, the summary, and each window's saving beside the oracle's (chart and table). */
export function renderGreenHtml(report: GreenReport): string {
  const { settings, summary, windows } = report;
  const pct = (x: number | null) => (x === null ? '–' : `${x}%`);
  const body = [
    `<h1>Green evaluation: ${escapeHtml(String(settings.trace))}</h1>`,
    `<p class="note">${escapeHtml(Object.entries(settings).map(([k, v]) => `${k} ${v}`).join(', '))}</p>`,
    table(
      ['', 'value'],
      [
        ['carbon saved vs green-blind (mean of windows)', pct(summary.carbonSavedPct)],
        ['oracle (perfect forecast)', pct(summary.oracleSavedPct)],
        ['live forecaster / oracle', pct(summary.liveOfOraclePct)],
        ['worst window', pct(summary.minSavedPct)],
        ['median window', pct(summary.medianSavedPct)],
        ['deadline misses (all windows)', summary.deadlineMisses],
        ['other jobs: mean wait (s), green-aware / green-blind', `${summary.othersMeanWaitS} / ${summary.baselineOthersMeanWaitS}`],
        ["green-blind's, deferrable jobs arriving up to a minute later: mean, sd (s)", `${summary.baselineOthersWaitMeanS}, ${summary.baselineOthersWaitSdS}`],
        ['windows where other jobs waited longer beyond noise (above mean + 2 sd)', `${summary.othersWaitAboveNoise} of ${summary.windows}`],
        ['other jobs: green-aware’s mean wait less green-blind’s on the same workloads: mean, sd (s)', `${summary.othersWaitExtraMeanS}, ${summary.othersWaitExtraSdS}`],
        ['carbon saved on the same workloads (mean of windows): live forecaster / oracle', `${pct(summary.savedPairsMeanPct)} / ${pct(summary.oracleSavedPairsMeanPct)} (${pct(summary.liveOfOraclePairsPct)})`],
        ['windows where a pool’s other jobs waited longer beyond noise, by pool', POOLS.map((pool) => `${pool} ${summary.othersWaitAboveNoiseByPool[pool]}`).join(', ')],
        ['other jobs by pool: green-aware’s mean wait less green-blind’s on the same workloads (s)', Object.entries(summary.othersWaitExtraMeanSByPool).map(([pool, s]) => `${pool} ${s}`).join(', ') || '–'],
        ['windows that emitted more than green-blind beyond noise (mean on the same workloads below 0 by more than 2 standard errors)', summary.emittedMoreBeyondNoise === null ? '– (no noise runs)' : `${summary.emittedMoreBeyondNoise} of ${summary.windows}`],
      ],
    ),
    `<p class="${summary.minSavedPct >= 0 && summary.deadlineMisses === 0 ? 'pass' : 'fail'}">${summary.minSavedPct >= 0 ? 'no window emits more than green-blind' : 'a window emits more than green-blind'}; ${summary.deadlineMisses} deadline misses</p>`,
    '<h2>Savings per window</h2>',
    lineChart({
      title: 'carbon saved vs green-blind',
      unit: '%',
      lines: [
        { name: 'live forecast', color: PALETTE[0], values: windows.map((w) => w.savedPct) },
        { name: 'oracle', color: PALETTE[1], values: windows.map((w) => w.oracleSavedPct), dashed: true },
        { name: 'spatial only', color: PALETTE[2], values: windows.map((w) => w.spatialSavedPct) },
      ],
      xLabel: (i) => windows[i]?.start ?? '',
    }),
    table(
      ['window', 'saved', 'oracle', 'spatial only', 'mean delay (h)', 'misses', 'others wait (s) aware / blind', 'blind, later arrivals: mean ± sd (s)', 'aware − blind, same workloads: mean ± sd (s)', 'saved, same workloads: mean ± sd (oracle)'],
      windows.map((w) => [
        w.start,
        pct(w.savedPct),
        pct(w.oracleSavedPct),
        pct(w.spatialSavedPct),
        round(w.meanDelayS / 3600, 1),
        w.deadlineMisses,
        `${w.othersMeanWaitS} / ${w.baselineOthersMeanWaitS}`,
        `${w.baselineOthersWaitMeanS} ± ${w.baselineOthersWaitSdS}`,
        `${w.othersWaitExtraMeanS} ± ${w.othersWaitExtraSdS}`,
        `${w.savedPairsMeanPct}% ± ${w.savedPairsSdPct}% (${w.oracleSavedPairsMeanPct}%)`,
      ]),
    ),
    '<h2>Other jobs’ wait by pool</h2>',
    table(
      ['window', 'pool', 'aware / blind (s)', 'blind, later arrivals: mean ± sd (s)', 'aware − blind, same workloads: mean ± sd (s)', 'beyond noise'],
      windows.flatMap((w) =>
        Object.entries(w.othersWaitByPool).map(([pool, p]) => [w.start, pool, `${p!.othersMeanWaitS} / ${p!.baselineOthersMeanWaitS}`, `${p!.baselineOthersWaitMeanS} ± ${p!.baselineOthersWaitSdS}`, `${p!.othersWaitExtraMeanS} ± ${p!.othersWaitExtraSdS}`, waitedBeyondNoise(p!) ? 'yes' : 'no']),
      ),
    ),
  ].join('\n');
  return page(`Green evaluation: ${settings.trace}`, body);
}

/** Writes report.json and report.html to `dir`. */
export function writeGreenReports(report: GreenReport, dir: string): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderGreenHtml(report));
  return { json, html };
}
