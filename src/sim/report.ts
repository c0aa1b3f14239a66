import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { POOLS } from '../protocol';
import { PALETTE, escapeHtml, lineChart, page, table } from '../report/html';
import type { SimResult } from './engine';

/** A simulator run: one workload, one cluster, several policies side by side. */
export interface SimReport {
  trace: string;
  cluster: { name: string; nodes: number; byPool: Record<string, number> };
  jobs: number;
  skipped: Record<string, number>;
  /** Jobs replayed per second of wall-clock time, over all policies. */
  jobsPerSec: number;
  results: SimResult[];
}

/** The headline figures per policy: the final JSON line of `npm run sim`. */
export function headline(report: SimReport) {
  return {
    trace: report.trace,
    jobs: report.jobs,
    jobsPerSec: report.jobsPerSec,
    policies: Object.fromEntries(
      report.results.map((r) => [
        r.policy,
        {
          meanWaitS: r.waitS.mean,
          p99WaitS: r.waitS.p99,
          meanBoundedSlowdown: r.boundedSlowdown.mean,
          utilisation: r.utilisation,
          completed: r.jobs.completed,
          rejected: r.jobs.rejected,
          greenShare: r.energy.greenShare,
          carbonPerJobG: r.energy.carbonPerJobG,
          wallMs: r.wallMs,
        },
      ]),
    ),
  };
}

/** One row per measure, one column per policy. */
function rowsOf(results: readonly SimResult[]): [string, ...(string | number)[]][] {
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
  const row = (label: string, f: (r: SimResult) => string | number): [string, ...(string | number)[]] => [label, ...results.map(f)];
  return [
    row('jobs completed', (r) => r.jobs.completed),
    row('jobs rejected (never fit)', (r) => r.jobs.rejected),
    row('jobs unfinished', (r) => r.jobs.unfinished),
    row('jobs interrupted by failures', (r) => r.jobs.interrupted),
    row('wait mean (s)', (r) => r.waitS.mean),
    row('wait p50 (s)', (r) => r.waitS.p50),
    row('wait p95 (s)', (r) => r.waitS.p95),
    row('wait p99 (s)', (r) => r.waitS.p99),
    row('completion mean (s)', (r) => r.completionS.mean),
    row('completion p99 (s)', (r) => r.completionS.p99),
    row('bounded slowdown mean', (r) => r.boundedSlowdown.mean),
    row('bounded slowdown p99', (r) => r.boundedSlowdown.p99),
    row('utilisation', (r) => pct(r.utilisation)),
    ...POOLS.map((pool) => row(`  ${pool}`, (r) => pct(r.utilisationByPool[pool]))),
    row('GPU fragmentation', (r) => pct(r.gpuFragmentation)),
    row('energy (kWh)', (r) => r.energy.kwh),
    row('green share', (r) => pct(r.energy.greenShare)),
    row('carbon (kg)', (r) => r.energy.carbonKg),
    row('energy cost (CNY)', (r) => r.energy.cost),
    row('energy charged to jobs (kWh)', (r) => r.energy.jobKwh),
    row('  green share', (r) => pct(r.energy.jobGreenShare)),
    row('  carbon per job (g)', (r) => r.energy.carbonPerJobG),
    row('deferred for green power', (r) => r.deferred),
    row('deferrable: mean delay (s)', (r) => r.deferrable.meanDelayS),
    row('deferrable: deadline misses', (r) => r.deferrable.deadlineMisses),
    row('held by power caps', (r) => r.powerCapHolds),
    row('EASY reservations missed', (r) => r.reservationViolations),
    row('makespan (s)', (r) => r.makespanS),
    row('replay (jobs/s)', (r) => r.jobsPerSec),
  ];
}

/** The comparison as a plain-text table for the terminal. */
export function formatTable(report: SimReport): string {
  const head = ['', ...report.results.map((r) => r.policy)];
  const rows = [head, ...rowsOf(report.results).map((r) => r.map(String))];
  const widths = head.map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r: (string | number)[]) => r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join('  ');
  const skipped = Object.entries(report.skipped);
  return [
    `${report.trace}: ${report.jobs} jobs on ${report.cluster.nodes} nodes (${Object.entries(report.cluster.byPool).map(([p, n]) => `${p} ${n}`).join(', ')})` +
      (skipped.length > 0 ? `; skipped ${skipped.map(([why, n]) => `${n} (${why})`).join(', ')}` : ''),
    line(rows[0]),
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** The comparison as one HTML page with charts over virtual time. */
export function renderHtml(report: SimReport): string {
  const results = report.results;
  const color = (i: number) => PALETTE[i % PALETTE.length];
  const longest = results.reduce((a, r) => (r.timeline.tS.length > a.timeline.tS.length ? r : a), results[0]);
  const xLabel = (i: number) => hours(longest?.timeline.tS[i] ?? 0);
  const usedPools = POOLS.filter((pool) => results.some((r) => r.utilisationByPool[pool] !== undefined));
  const charts = [
    ...usedPools.map((pool) =>
      lineChart({ title: `${pool} pool: allocated share`, unit: 'share of capacity', maxY: 1, xLabel, lines: results.map((r, i) => ({ name: r.policy, color: color(i), values: r.timeline.utilisation[pool] })) }),
    ),
    ...usedPools.map((pool) => lineChart({ title: `${pool} pool: jobs waiting`, unit: 'jobs', xLabel, lines: results.map((r, i) => ({ name: r.policy, color: color(i), values: r.timeline.pending[pool] })) })),
    lineChart({ title: 'Power drawn', unit: 'kW', xLabel, lines: results.map((r, i) => ({ name: r.policy, color: color(i), values: r.timeline.powerKw })) }),
    lineChart({ title: 'Green share of the power drawn', unit: 'share', maxY: 1, xLabel, lines: results.map((r, i) => ({ name: r.policy, color: color(i), values: r.timeline.greenShare })) }),
  ];
  const skipped = Object.entries(report.skipped);
  const body = [
    `<h1>Simulation: ${escapeHtml(report.trace)}</h1>`,
    `<p>${report.jobs} jobs on ${report.cluster.nodes} nodes of cluster ${escapeHtml(report.cluster.name)} (${Object.entries(report.cluster.byPool)
      .map(([p, n]) => `${escapeHtml(p)} ${n}`)
      .join(', ')}), replayed at ${report.jobsPerSec} jobs/s.${skipped.length > 0 ? ` Skipped: ${skipped.map(([why, n]) => `${n} (${escapeHtml(why)})`).join(', ')}.` : ''}</p>`,
    '<h2>Results</h2>',
    table(['', ...results.map((r) => r.policy)], rowsOf(results)),
    `<p class="note">Wait: submit to start. Completion: submit to end. Bounded slowdown: max(1, completion / max(run time, 10 s)). Utilisation: time-averaged allocated share of each pool's cores (GPUs in the intelligent pool) from the first submit to the last end. GPU fragmentation: free GPU capacity on servers where no waiting GPU request fits, as a share of all GPUs (sampled).</p>`,
    '<h2>Over time</h2>',
    ...charts,
  ].join('\n');
  return page(`Simulation: ${report.trace}`, body);
}

/** Writes report.json (everything, timelines included) and report.html to `dir`. */
export function writeReports(report: SimReport, dir: string): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderHtml(report));
  return { json, html };
}

function hours(seconds: number): string {
  return seconds < 3600 ? `${Math.round(seconds / 60)}m` : `${(seconds / 3600).toFixed(seconds < 36_000 ? 1 : 0)}h`;
}
