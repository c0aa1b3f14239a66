/**
 * How good are the green forecasters on a carbon-intensity trace, out of sample?
 *
 *   npm run eval:forecast -- --carbon ../shared/traces/gb_ci.csv
 *   npm run eval:forecast -- --carbon ../shared/traces/gb_ci.csv --segments 4 --json
 *
 * Each live forecaster is replayed through the trace (forecastErrors): at every step it has seen only what
 * came before, forecasts, and is scored at several horizons against what the trace then recorded. The
 * trace is cut in `--segments` consecutive parts (roughly seasons for a year), each replayed from scratch
 * after a week of warm-up, so a parameter fitted in one part is never scored on data it was fitted on.
 * Prints a table of mean absolute errors (gCO2/kWh) and a final JSON line.
 */
import { Command } from 'commander';
import { number } from './flags';
import { FORECASTERS, forecastErrors, forecasterNamed, loadCarbonSeries, makeForecaster, type ForecasterName } from '../green';
import { DAY_MS, HOUR_MS } from '../time';

const opts = new Command()
  .name('eval:forecast')
  .description('Score the green forecasters out of sample on a carbon-intensity trace.')
  .requiredOption('--carbon <file>', 'grid carbon intensity over time (CSV with the columns Time,Carbon Intensity)')
  .option('--carbon-column <name>', "the trace's column of carbon intensity, in gCO2/kWh (default: found by its header)")
  .option('--forecasters <list>', 'forecasters to score', FORECASTERS.join(','))
  .option('--segments <n>', 'consecutive parts of the trace, each scored on its own', number('--segments', 1), 4)
  .option('--horizons <hours>', 'horizons scored, in hours', '1,6,12,24')
  .option('--warmup-days <d>', 'history each part is shown before its first scored forecast', number('--warmup-days', 0), 7)
  .option('--json', 'print only the final JSON line on stdout')
  .showHelpAfterError()
  .parse()
  .opts<{ carbon: string; carbonColumn?: string; forecasters: string; segments: number; horizons: string; warmupDays: number; json?: boolean }>();

function main(): void {
  const series = loadCarbonSeries(opts.carbon, { outside: 'clamp', column: opts.carbonColumn, columnSetting: '--carbon-column' });
  const names: ForecasterName[] = opts.forecasters.split(',').map((s) => forecasterNamed(s.trim()));
  const horizonsH = opts.horizons.split(',').map(Number);
  if (horizonsH.some((h) => !(h > 0))) throw new Error(`--horizons: bad list ${opts.horizons}`);
  const horizonsMs = horizonsH.map((h) => h * HOUR_MS);
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  const segmentMs = Math.floor((series.endMs - series.startMs) / opts.segments / series.stepMs) * series.stepMs;
  const warmupMs = opts.warmupDays * DAY_MS;
  if (segmentMs <= warmupMs + horizonsMs[horizonsMs.length - 1]) throw new Error('the trace is too short for that many segments and that warm-up');
  const stepMs = Math.max(series.stepMs, 30 * 60_000);
  const results: { forecaster: string; segment: string; horizonH: number; mae: number; mape: number; count: number }[] = [];
  for (let s = 0; s < opts.segments; s++) {
    const fromMs = series.startMs + s * segmentMs;
    const segment = new Date(fromMs).toISOString().slice(0, 10);
    for (const name of names) {
      const errors = forecastErrors(series, makeForecaster(name, { stepMs: series.stepMs }), { horizonsMs, fromMs, toMs: fromMs + segmentMs, stepMs, warmupMs });
      errors.forEach((e, i) => results.push({ forecaster: name, segment, horizonH: horizonsH[i], mae: round(e.mae), mape: round(e.mape, 4), count: e.count }));
    }
  }
  log(`out-of-sample mean absolute error (gCO2/kWh) on ${opts.carbon}, ${opts.segments} parts, ${opts.warmupDays} days of warm-up each`);
  const width = Math.max(...names.map((n) => n.length)) + 12;
  log(`${'part / forecaster'.padEnd(width)}${horizonsH.map((h) => `${h} h`.padStart(9)).join('')}`);
  const segments = [...new Set(results.map((r) => r.segment))];
  const mean = (rows: typeof results) => rows.reduce((a, r) => a + r.mae * r.count, 0) / Math.max(1, rows.reduce((a, r) => a + r.count, 0));
  for (const segment of [...segments, 'all']) {
    for (const name of names) {
      const cells = horizonsH.map((h) => round(mean(results.filter((r) => r.forecaster === name && r.horizonH === h && (segment === 'all' || r.segment === segment)))));
      log(`${`${segment} ${name}`.padEnd(width)}${cells.map((c) => String(c).padStart(9)).join('')}`);
    }
  }
  const overall = Object.fromEntries(names.map((name) => [name, Object.fromEntries(horizonsH.map((h) => [`${h}h`, round(mean(results.filter((r) => r.forecaster === name && r.horizonH === h)))]))]));
  process.stdout.write(`${JSON.stringify({ trace: opts.carbon, segments: opts.segments, maeByForecaster: overall, results })}\n`);
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

try {
  main();
} catch (err) {
  process.stderr.write(`eval:forecast: ${(err as Error).message}\n`);
  process.exit(2);
}
