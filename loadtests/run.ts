/**
 * Capacity-planning load tests (see loadtests/README.md):
 *
 *   npm run loadtest -- --scenario steady --rate 1000 --duration 30s      # one run on a local stack
 *   npm run loadtest -- --find-max --scenario steady --trial-duration 10s  # the highest rate meeting the thresholds
 *   npm run loadtest -- --scenario noisy-tenant --url http://host:8080 --tokens a,b,c,d,e,f,g,h
 *
 * Without --url it starts nats-server, the scheduler and an agent of --nodes virtual nodes on this machine.
 * Prints the figures, writes report.json and report.html, and ends with a JSON line. Exit codes: 0 when the
 * run completed (whether or not thresholds held), 3 when a threshold failed and --check was given (with
 * --find-max: when no rate met them), 1 when the run could not be made (bad flags, scenarios or stack).
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { startLocalStack } from '../harness/stack';
import { findMaxRate } from './find-max';
import { runScenario, type Progress, type RunOptions, type Target } from './load';
import { formatReport, summaryOf, writeReports, type Report } from './report';
import { compileScenario, DEFAULT_SCENARIOS_FILE, loadScenarios, localTenants, parseDuration, rateProfile, type ScenarioFile } from './scenarios';

interface Flags {
  scenario: string;
  rate?: string;
  duration?: string;
  nodes: string;
  url?: string;
  token?: string;
  tokens?: string;
  connections: string;
  out?: string;
  scenarios: string;
  quiet?: boolean;
  check?: boolean;
  findMax?: boolean;
  warmup: string;
  trialDuration: string;
  maxRate: string;
}

/** Exit code of a completed run whose thresholds failed, under --check. */
const THRESHOLDS_FAILED = 3;
/** Pause before each find-max trial after the first, so jobs of the previous one (about a second each) drain. */
const SETTLE_MS = 2_000;

const flags = new Command()
  .name('loadtest')
  .description('Capacity-planning load tests of the scheduler API; scenarios in loadtests/scenarios.json.')
  .option('--scenario <name>', 'scenario of the scenarios file', 'steady')
  .option('--rate <n>', "peak arrival rate, requests/s (default: the scenario's); its other rates scale in proportion")
  .option('--duration <d>', "length of the run: 30s, 2m or seconds (default: the scenario's)")
  .option('--warmup <d>', 'load before the measured run, at the start rate of the scenario, not counted (0 for none)', '5s')
  .option('--nodes <n>', 'virtual nodes of the local stack', '1000')
  .option('--url <url>', 'load an existing scheduler instead of starting a local stack')
  .option('--token <token>', 'with --url: bearer token for every tenant of the scenario (default: $QY_TOKEN)', process.env.QY_TOKEN)
  .option('--tokens <list>', "with --url: comma-separated tokens in the order of the scenario's tenants")
  .option('--connections <n>', 'HTTP connections to the scheduler', '64')
  .option('--out <dir>', 'folder of report.json and report.html (default: .data/loadtests/<scenario>-<timestamp>)')
  .option('--scenarios <file>', 'scenarios file', DEFAULT_SCENARIOS_FILE)
  .option('--quiet', 'no progress bar (there is none when stderr is not a terminal either)')
  .option('--check', `exit with code ${THRESHOLDS_FAILED} when a threshold fails`)
  .option('--find-max', "search the highest rate that meets the scenario's thresholds")
  .option('--trial-duration <d>', 'with --find-max: length of each trial', '10s')
  .option('--max-rate <n>', 'with --find-max: highest rate to try', '20000')
  .parse()
  .opts<Flags>();

/** A positive number from a flag, or an error naming the flag. */
function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new Error(`${flag} must be a positive number, not ${value}`);
  return n;
}

/** The scheduler to load: the one at --url, or a local stack started for this run (stopped by `stop`). */
async function openTarget(file: ScenarioFile, tenantNames: string[]): Promise<{ target: Target; stop: () => Promise<void> }> {
  if (flags.url) {
    const tokens = (flags.tokens ?? flags.token ?? '').split(',').filter(Boolean);
    if (tokens.length === 0) throw new Error('--url needs --token, --tokens or $QY_TOKEN');
    return { target: { url: flags.url, tokens }, stop: async () => undefined };
  }
  const nodes = positive('--nodes', flags.nodes);
  process.stderr.write(`starting a local stack: nats-server, the scheduler and ${nodes} virtual nodes…\n`);
  const stack = await startLocalStack({ nodes, prefix: 'load', tenants: localTenants(file) });
  return { target: { url: stack.url, tokens: tenantNames.map((name) => stack.tokens[name]), localNodes: nodes }, stop: stack.stop };
}

/** Runs a scenario with a progress bar on stderr when it is a terminal and --quiet is not given. */
async function runWithProgress(file: ScenarioFile, target: Target, label: string, options: RunOptions): Promise<Report> {
  if (!flags.quiet && options.warmupS) process.stderr.write(`warming up for ${options.warmupS} s (not counted)…\n`);
  if (flags.quiet || !process.stderr.isTTY) return runScenario(file, flags.scenario, target, options);
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} sent | ok {ok} | errors {errors} | in flight {inFlight} | p99 {p99} ms`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const onProgress = (p: Progress) => {
    const payload = { ok: p.ok, errors: p.errors, inFlight: p.inFlight, p99: p.lastSecondP99Ms };
    if (!started) bar.start(p.total, p.sent, payload);
    else bar.update(p.sent, payload);
    started = true;
  };
  try {
    return await runScenario(file, flags.scenario, target, { ...options, onProgress });
  } finally {
    bar.stop();
  }
}

const defaultOutDir = () => join('.data', 'loadtests', `${flags.scenario}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}`);

/** One run: figures, reports, the final JSON line. */
async function runOnce(file: ScenarioFile, target: Target, options: RunOptions): Promise<void> {
  const durationS = flags.duration ? parseDuration(flags.duration) : undefined;
  const report = await runWithProgress(file, target, flags.scenario, { ...options, durationS, warmupS: parseDuration(flags.warmup) });
  const out = flags.out ?? defaultOutDir();
  const paths = writeReports(report, out);
  console.log(formatReport(report));
  console.log(`reports: ${paths.json} ${paths.html}`);
  console.log(JSON.stringify(summaryOf(report, out)));
  if (flags.check && !report.thresholdsPassed) process.exitCode = THRESHOLDS_FAILED;
}

/** The find-max search: a line per trial, the reports of the best trial, and the final JSON line. */
async function findMax(file: ScenarioFile, target: Target, options: RunOptions, startRate: number): Promise<void> {
  const trialS = parseDuration(flags.trialDuration);
  let n = 0;
  const search = await findMaxRate(
    async (rate) => {
      if (n++ > 0) await sleep(SETTLE_MS);
      const warmupS = n === 1 ? parseDuration(flags.warmup) : 0;
      const report = await runWithProgress(file, target, `trial ${n} at ${rate}/s`, { ...options, rate, durationS: trialS, warmupS });
      const t = summaryOf(report);
      console.log(`trial ${n}: ${rate}/s for ${trialS} s → p99 ${t.p99Ms} ms (submit ${t.submitP99Ms ?? '-'} ms), errors ${(t.errorRate * 100).toFixed(2)}%, ok ${t.throughput}/s: ${t.thresholdsPassed ? 'pass' : 'FAIL'}`);
      return { passed: report.thresholdsPassed, result: report };
    },
    { startRate, maxRate: positive('--max-rate', flags.maxRate) },
  );
  const best = search.best?.result;
  const out = flags.out ?? defaultOutDir();
  if (best) writeReports(best, out);
  const line = {
    scenario: flags.scenario,
    maxRate: search.maxRate,
    p99Ms: best?.totals.latencyMs.p99 ?? null,
    submitP99Ms: best?.byKind.submit?.latencyMs.p99 ?? null,
    errorRate: best?.errorRate ?? null,
    throughput: best?.okPerS ?? null,
    trials: search.trials.length,
    trialDurationS: trialS,
    out: best ? out : undefined,
  };
  console.log(JSON.stringify(line));
  if (flags.check && search.maxRate === 0) process.exitCode = THRESHOLDS_FAILED;
}

async function main(): Promise<void> {
  const file = loadScenarios(flags.scenarios);
  const plan = compileScenario(file, flags.scenario);
  const rate = flags.rate === undefined ? undefined : positive('--rate', flags.rate);
  const options: RunOptions = { rate, connections: positive('--connections', flags.connections) };
  const { target, stop } = await openTarget(file, plan.tenantNames);
  const onSignal = (signal: NodeJS.Signals) => void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    if (flags.findMax) await findMax(file, target, options, rate ?? rateProfile(plan.scenario.arrival).peakRate);
    else await runOnce(file, target, options);
  } finally {
    await stop();
  }
}

await main().catch((err: Error) => {
  process.stderr.write(`loadtest: ${err.message}\n`);
  process.exitCode = 1;
});
