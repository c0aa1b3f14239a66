import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PALETTE, escapeHtml, lineChart, page, table } from '../report/html';
import { FILL_CURVE_POINTS, type FillRun } from './fill';
import { spread, type Spread } from './recorder';

/** One policy over every seed of a fill. */
export interface FillSummary {
  policy: string;
  unallocatedGpuShare: Spread;
  allocatedGpuShare: number;
  fragmentedGpuShare: number;
  arrivedTasks: number;
  failedTasks: number;
  /** Mean over the seeds, per percent of capacity requested (index = percent). */
  curve: { allocatedGpuShare: number[]; unallocatedGpuShare: number[]; failedGpuShare: number[]; fragmentedGpuShare: number[] };
  runs: FillRun[];
  wallMs: number;
}

/** A fill-mode run: one trace, one cluster, several policies, several seeds. */
export interface FillReport {
  trace: string;
  cluster: { name: string; nodes: number; gpus: number };
  seeds: number[];
  summaries: FillSummary[];
}

/** Folds the runs of one policy (one per seed) into its summary. */
export function summarise(runs: FillRun[]): FillSummary {
  const meanOf = (f: (r: FillRun) => number) => round(runs.reduce((s, r) => s + f(r), 0) / runs.length);
  const curveOf = (f: (r: FillRun, i: number) => number) => Array.from({ length: FILL_CURVE_POINTS }, (_, i) => meanOf((r) => f(r, i)));
  return {
    policy: runs[0].policy,
    unallocatedGpuShare: spread(runs.map((r) => r.unallocatedGpuShare)),
    allocatedGpuShare: meanOf((r) => r.allocatedGpuShare),
    fragmentedGpuShare: meanOf((r) => r.fragmentedGpuShare),
    arrivedTasks: meanOf((r) => r.arrivedTasks),
    failedTasks: meanOf((r) => r.failedTasks),
    curve: {
      allocatedGpuShare: curveOf((r, i) => r.curve.allocatedGpuShare[i]),
      unallocatedGpuShare: curveOf((r, i) => 1 - r.curve.allocatedGpuShare[i]),
      // Requested but not placed: at 100% this is unallocatedGpuShare less the little capacity never requested.
      failedGpuShare: curveOf((r, i) => r.curve.arrivedGpuShare[i] - r.curve.allocatedGpuShare[i]),
      fragmentedGpuShare: curveOf((r, i) => r.curve.fragmentedGpuShare[i]),
    },
    runs,
    wallMs: runs.reduce((s, r) => s + r.wallMs, 0),
  };
}

/** The final JSON line of `npm run sim -- --mode fill`: the headline figures per policy. */
export function fillHeadline(report: FillReport) {
  return {
    trace: report.trace,
    mode: 'fill',
    gpus: report.cluster.gpus,
    seeds: report.seeds,
    policies: Object.fromEntries(
      report.summaries.map((s) => [
        s.policy,
        {
          unallocatedGpuShare: s.unallocatedGpuShare.mean,
          unallocatedGpuShareMin: s.unallocatedGpuShare.min,
          unallocatedGpuShareMax: s.unallocatedGpuShare.max,
          unallocatedGpuShareStdev: s.unallocatedGpuShare.stdev,
          unallocatedGpuShareBySeed: s.runs.map((r) => r.unallocatedGpuShare),
          allocatedGpuShare: s.allocatedGpuShare,
          fragmentedGpuShare: s.fragmentedGpuShare,
          arrivedTasks: s.arrivedTasks,
          failedTasks: s.failedTasks,
          wallMs: s.wallMs,
        },
      ]),
    ),
  };
}

/** One row per measure, one column per policy; the ratio is to the first policy. */
function rowsOf(report: FillReport): [string, ...(string | number)[]][] {
  const s = report.summaries;
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const row = (label: string, f: (x: FillSummary) => string | number): [string, ...(string | number)[]] => [label, ...s.map(f)];
  const first = s[0].unallocatedGpuShare.mean;
  return [
    row('unallocated GPU share (mean)', (x) => pct(x.unallocatedGpuShare.mean)),
    row('  min – max', (x) => `${pct(x.unallocatedGpuShare.min)} – ${pct(x.unallocatedGpuShare.max)}`),
    row('  stdev', (x) => pct(x.unallocatedGpuShare.stdev)),
    row(`  × ${s[0].policy}`, (x) => (first > 0 ? (x.unallocatedGpuShare.mean / first).toFixed(3) : '–')),
    row('allocated GPU share', (x) => pct(x.allocatedGpuShare)),
    row('fragmented GPU share (FGD measure)', (x) => pct(x.fragmentedGpuShare)),
    row('tasks arrived (mean)', (x) => x.arrivedTasks),
    row('tasks failed (mean)', (x) => x.failedTasks),
    row('wall time (ms, all seeds)', (x) => x.wallMs),
  ];
}

/** The comparison as a plain-text table for the terminal. */
export function formatFillTable(report: FillReport): string {
  const head = ['', ...report.summaries.map((s) => s.policy)];
  const rows = [head, ...rowsOf(report).map((r) => r.map(String))];
  const widths = head.map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [
    `${report.trace}, fill mode: tasks sampled until their GPU requests reach the ${report.cluster.gpus} GPUs of ${report.cluster.nodes} nodes; seeds ${report.seeds.join(', ')}`,
    ...rows.map(line),
  ].join('\n');
}

/** The comparison as one HTML page, with the curves over the requested share of capacity. */
export function renderFillHtml(report: FillReport): string {
  const color = (i: number) => PALETTE[i % PALETTE.length];
  const xLabel = (i: number) => `${i}%`;
  const chart = (title: string, unit: string, values: (s: FillSummary) => number[], maxY?: number) =>
    lineChart({ title, unit, xLabel, maxY, lines: report.summaries.map((s, i) => ({ name: s.policy, color: color(i), values: values(s) })) });
  const body = [
    `<h1>Fill: ${escapeHtml(report.trace)}</h1>`,
    `<p>Tasks sampled from the trace (seeds ${report.seeds.join(', ')}) arrive one by one and never leave, each placed once or failed, until their GPU requests reach the ${report.cluster.gpus} GPUs of cluster ${escapeHtml(report.cluster.name)} (${report.cluster.nodes} nodes), as in FGD (Weng et al., USENIX ATC'23). The x axis of each chart is the GPU demand arrived so far, as a share of GPU capacity.</p>`,
    '<h2>Results</h2>',
    table(['', ...report.summaries.map((s) => s.policy)], rowsOf(report)),
    `<p class="note">Unallocated GPU share: GPU capacity not allocated once the requests reached capacity (lower is better). Fragmented GPU share: FGD's expected fragmentation, the free GPU capacity the typical arrived request could not use, as a share of capacity. Means over the seeds.</p>`,
    '<h2>As the cluster fills</h2>',
    chart('GPU demand arrived but not placed', 'share of GPU capacity', (s) => s.curve.failedGpuShare),
    chart('GPU capacity allocated', 'share of GPU capacity', (s) => s.curve.allocatedGpuShare, 1),
    chart('GPU fragmentation (FGD measure)', 'share of GPU capacity', (s) => s.curve.fragmentedGpuShare),
  ].join('\n');
  return page(`Fill: ${report.trace}`, body);
}

/** Writes report.json (every run, curves included) and report.html to `dir`. */
export function writeFillReports(report: FillReport, dir: string): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(html, renderFillHtml(report));
  return { json, html };
}

function round(x: number): number {
  return Math.round(x * 1e5) / 1e5;
}
