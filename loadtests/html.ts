/**
 * report.html of a load run: one self-contained page (src/report/html.ts: inline CSS and SVG, no scripts,
 * nothing fetched) with latency and throughput per second and the tables of the report.
 */
import { escapeHtml, lineChart, page, table, type ChartLine } from '../src/report/html';
import type { Report } from './report';

function tallyTable(label: string, tallies: Record<string, Report['totals']>): string {
  const rows = Object.entries(tallies).map(([name, t]) => [name, t.sent, t.ok, t.limited, t.errors, t.latencyMs.p50, t.latencyMs.p90, t.latencyMs.p99, t.latencyMs.p999, t.latencyMs.max]);
  return table([label, 'sent', 'ok', 'limited', 'errors', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms'], rows);
}

/** The whole report as one HTML page. */
export function renderHtml(report: Report): string {
  const s = report.series;
  const second = (i: number) => `${i}s`;
  const verdict = report.thresholdsPassed ? '<span class="pass">thresholds held</span>' : '<span class="fail">thresholds failed</span>';
  const throughput: ChartLine[] = [
    { name: 'sent/s', color: '#888888', values: s.map((p) => p.sent), dashed: true },
    { name: 'ok/s', color: '#1a7f37', values: s.map((p) => p.ok) },
    { name: 'errors/s', color: '#cf222e', values: s.map((p) => p.errors) },
  ];
  if (report.totals.limited > 0) throughput.push({ name: 'limited/s', color: '#bf8700', values: s.map((p) => p.limited) });
  const target = report.target.localNodes === undefined ? report.target.url : `local stack, ${report.target.localNodes} nodes`;
  const t = report.totals;
  const body = `<h1>Load test: ${escapeHtml(report.scenario)} — ${verdict}</h1>
<p>${escapeHtml(report.description)}</p>
${table(['started', 'target', 'peak rate /s', 'duration s', 'sent', 'ok', 'limited', 'errors', 'error rate', 'sent/s', 'ok/s'], [[report.startedAt, target, report.rate, report.durationS, t.sent, t.ok, t.limited, t.errors, report.errorRate, report.sentPerS, report.okPerS]])}
<h2>Thresholds</h2>
${table(['check', 'actual', 'limit', 'verdict'], report.thresholds.map((c) => [c.name, c.actual, c.limit, c.passed ? 'ok' : 'FAIL']))}
<h2>Latency per second</h2>
${lineChart({
  title: 'Latency of responses per second',
  unit: 'ms',
  xLabel: second,
  lines: [
    { name: 'p50', color: '#0969da', values: s.map((p) => p.p50Ms) },
    { name: 'p99', color: '#cf222e', values: s.map((p) => p.p99Ms) },
  ],
})}
<h2>Throughput per second</h2>
${lineChart({ title: 'Requests per second', unit: 'req/s', xLabel: second, lines: throughput })}
<h2>Latency by request kind</h2>
${tallyTable('kind', { all: t, ...report.byKind })}
<h2>By tenant</h2>
${tallyTable('tenant', report.byTenant)}
<h2>Errors</h2>
${Object.keys(report.errorsByKind).length ? table(['kind', 'count'], Object.entries(report.errorsByKind)) : '<p>none</p>'}
<p class="note">Latency is from a request going out to its whole response; requests go out on schedule (open model). A tenant's expected 429s count as limited, not as errors.</p>`;
  return page(`Load test ${report.scenario}`, body);
}
