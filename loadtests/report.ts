/**
 * The report of a load run: its schema (the JSON written to report.json, checked by the tests), how it is
 * built from the recorder, the thresholds verdict, the text printed at the end, and the final JSON line.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { renderHtml } from './html';
import { thresholdChecks, type RateProfile, type ScenarioPlan } from './scenarios';
import type { Recorder, TallySummary } from './stats';

const count = z.number().int().min(0);
const latencySchema = z.strictObject({ count, mean: z.number(), p50: z.number(), p90: z.number(), p99: z.number(), p999: z.number(), max: z.number() });
const tallySchema = z.strictObject({ sent: count, ok: count, limited: count, errors: count, latencyMs: latencySchema });

export const reportSchema = z.strictObject({
  scenario: z.string(),
  description: z.string(),
  startedAt: z.iso.datetime(),
  target: z.strictObject({ url: z.string(), localNodes: z.number().int().optional() }),
  /** Peak offered arrival rate, requests per second. */
  rate: z.number(),
  durationS: z.number(),
  profile: z.strictObject({ startRate: z.number(), stages: z.array(z.strictObject({ durationS: z.number(), target: z.number() })) }),
  /** Jobs submitted before the run for reads to find. */
  prefilled: count,
  /** All requests; `limited` are the expected 429s of a tenant meant to exceed its rate limit. */
  totals: tallySchema,
  errorRate: z.number().min(0).max(1),
  /** Offered: requests sent per second of the schedule. */
  sentPerS: z.number(),
  /** Answered with 2xx per second, from the start until the last response. */
  okPerS: z.number(),
  byKind: z.record(z.string(), tallySchema),
  byTenant: z.record(z.string(), tallySchema),
  /** `status 503`, `network UND_ERR_HEADERS_TIMEOUT`, … */
  errorsByKind: z.record(z.string(), count),
  thresholds: z.array(z.strictObject({ name: z.string(), limit: z.number(), actual: z.number(), passed: z.boolean() })),
  thresholdsPassed: z.boolean(),
  /** By second of the run: requests sent in it, responses and their latency percentiles as they came back. */
  series: z.array(z.strictObject({ second: count, sent: count, ok: count, limited: count, errors: count, p50Ms: z.number(), p99Ms: z.number() })),
});
export type Report = z.infer<typeof reportSchema>;

/** The final stdout line of a run. */
export const summarySchema = z.strictObject({
  scenario: z.string(),
  rate: z.number(),
  durationS: z.number(),
  sent: count,
  ok: count,
  limited: count,
  errors: count,
  errorRate: z.number(),
  p50Ms: z.number(),
  p99Ms: z.number(),
  submitP99Ms: z.number().optional(),
  /** Responses with 2xx per second. */
  throughput: z.number(),
  sentPerS: z.number(),
  thresholdsPassed: z.boolean(),
  out: z.string().optional(),
});
export type Summary = z.infer<typeof summarySchema>;

/** What runScenario hands over once the last response is in. */
export interface FinishedRun {
  plan: ScenarioPlan;
  profile: RateProfile;
  target: { url: string; localNodes?: number };
  startedAt: Date;
  /** From the first request out to the last response in. */
  wallS: number;
  prefilled: number;
  recorder: Recorder;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function buildReport(run: FinishedRun): Report {
  const totals = run.recorder.total.summary();
  const byKind = run.recorder.byKind();
  const errorRate = totals.sent > 0 ? totals.errors / totals.sent : 0;
  const thresholds = evaluateThresholds(run.plan, byKind, errorRate);
  return reportSchema.parse({
    scenario: run.plan.name,
    description: run.plan.scenario.description,
    startedAt: run.startedAt.toISOString(),
    target: { url: run.target.url, localNodes: run.target.localNodes },
    rate: run.profile.peakRate,
    durationS: round(run.profile.durationS, 3),
    profile: { startRate: run.profile.startRate, stages: run.profile.stages },
    prefilled: run.prefilled,
    totals,
    errorRate: round(errorRate, 6),
    sentPerS: round(totals.sent / run.profile.durationS, 1),
    okPerS: round(totals.ok / run.wallS, 1),
    byKind,
    byTenant: run.recorder.byTenant(),
    errorsByKind: run.recorder.errorsByKind(),
    thresholds,
    thresholdsPassed: thresholds.every((t) => t.passed),
    series: run.recorder.series(),
  });
}

/** The scenario's threshold checks on the measured figures; a kind that sent nothing has nothing to fail. */
function evaluateThresholds(plan: ScenarioPlan, byKind: Record<string, TallySummary>, errorRate: number): Report['thresholds'] {
  return thresholdChecks(plan.scenario).map((check) => {
    const actual = check.metric === 'errorRate' ? round(errorRate, 6) : (byKind[check.kind]?.latencyMs.p99 ?? 0);
    return { name: check.name, limit: check.limit, actual, passed: actual < check.limit };
  });
}

/** The final JSON line. */
export function summaryOf(report: Report, out?: string): Summary {
  return {
    scenario: report.scenario,
    rate: report.rate,
    durationS: report.durationS,
    sent: report.totals.sent,
    ok: report.totals.ok,
    limited: report.totals.limited,
    errors: report.totals.errors,
    errorRate: report.errorRate,
    p50Ms: report.totals.latencyMs.p50,
    p99Ms: report.totals.latencyMs.p99,
    submitP99Ms: report.byKind.submit?.latencyMs.p99,
    throughput: report.okPerS,
    sentPerS: report.sentPerS,
    thresholdsPassed: report.thresholdsPassed,
    out,
  };
}

const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
const latencyLine = (l: Report['totals']['latencyMs']) => `p50 ${l.p50} ms  p90 ${l.p90} ms  p99 ${l.p99} ms  p99.9 ${l.p999} ms  max ${l.max} ms`;
const tallyLine = (label: string, t: Report['totals']) => `  ${label.padEnd(10)} ${String(t.sent).padStart(7)} sent  ${String(t.ok).padStart(7)} ok  ${t.limited} limited  ${t.errors} errors   ${latencyLine(t.latencyMs)}`;

/** The human-readable summary printed before the final JSON line. */
export function formatReport(report: Report): string {
  const where = report.target.localNodes === undefined ? report.target.url : `a local stack of ${report.target.localNodes} virtual nodes`;
  const lines = [
    `scenario ${report.scenario}: peak ${report.rate}/s for ${report.durationS} s against ${where}${report.prefilled ? ` (${report.prefilled} jobs prefilled)` : ''}`,
    `sent ${report.totals.sent} (${report.sentPerS}/s)  ok ${report.totals.ok} (${report.okPerS}/s)  limited ${report.totals.limited}  errors ${report.totals.errors} (${percent(report.errorRate)})`,
    `latency ${latencyLine(report.totals.latencyMs)}`,
    ...Object.entries(report.byKind).map(([kind, t]) => tallyLine(kind, t)),
  ];
  if (Object.keys(report.byTenant).length > 1) lines.push('by tenant:', ...Object.entries(report.byTenant).map(([tenant, t]) => tallyLine(tenant, t)));
  const errors = Object.entries(report.errorsByKind);
  if (errors.length > 0) lines.push(`errors: ${errors.map(([kind, n]) => `${kind} ×${n}`).join(', ')}`);
  lines.push('thresholds:', ...report.thresholds.map((t) => `  ${t.passed ? 'ok  ' : 'FAIL'} ${t.name}: ${t.actual} < ${t.limit}`));
  return lines.join('\n');
}

/** Writes report.json and report.html to `dir` (created if needed); returns their paths. */
export function writeReports(report: Report, dir: string): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, 'report.json'), html: join(dir, 'report.html') };
  writeFileSync(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(paths.html, renderHtml(report));
  return paths;
}
