/**
 * The green evaluation: what does green-aware scheduling save on a real carbon-intensity trace?
 *
 *   npm run eval:green -- --carbon ../shared/traces/gb_ci.csv
 *   npm run eval:green -- --carbon ../shared/traces/gb_ci.csv --start 2020-06-01 --days 7 --deferrable-share 0.5 --json
 *
 * One synthetic workload (a share of it deferrable, each with a deadline some hours past its walltime) runs
 * three times on the same cluster and signals: green-blind, green-spatial (placement prefers greener
 * zones) and green-aware (spatial plus temporal shifting of deferrable jobs). The grid's intensity comes
 * from the trace, each zone's own green share from the cluster file (node failures are left out); the
 * part of a zone's power that is not green is charged at the grid's intensity. Prints a table and a final
 * JSON line.
 */
import { Command, InvalidArgumentError } from 'commander';
import { carbonSignal, environmentOf, loadClusterFile } from './cluster-file';
import { simulate, type SimResult } from './engine';
import { policiesNamed } from './policies';
import { seededRng } from './rng';
import { mixedCluster, mixedWorkload, type TimedJob } from './synthetic';
import { HOUR_MS } from '../time';

const number = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number ≥ ${min}`);
  return n;
};

const opts = new Command()
  .name('eval:green')
  .description('Compare green-blind, green-spatial and green-aware scheduling on a carbon-intensity trace.')
  .requiredOption('--carbon <file>', 'grid carbon intensity over time (CSV with the columns Time,Carbon Intensity)')
  .option('--cluster <file>', "zones' own green share by hour, prices (the nodes are the built-in mixed cluster)", 'configs/sim/qingyang.yaml')
  .option('--start <date>', 'the trace time where the run begins (default: the start of the trace)')
  .option('--days <n>', 'days of arrivals', number('--days', 0.1), 7)
  .option('--nodes <n>', 'nodes of the built-in mixed cluster', number('--nodes', 10), 200)
  .option('--load <x>', 'offered load as a share of capacity', number('--load', 0.01), 0.6)
  .option('--deferrable-share <x>', 'share of jobs that are deferrable', number('--deferrable-share', 0), 0.5)
  .option('--window-hours <h>', "how long past its walltime a deferrable job's deadline is", number('--window-hours', 0), 12)
  .option('--seed <n>', 'seed of the workload', number('--seed', 1), 1)
  .option('--json', 'print only the final JSON line on stdout')
  .showHelpAfterError()
  .parse()
  .opts<{ carbon: string; cluster: string; start?: string; days: number; nodes: number; load: number; deferrableShare: number; windowHours: number; seed: number; json?: boolean }>();

/** Makes a share of the jobs deferrable, each with a deadline `windowMs` past its walltime (its declared run time is exact). */
function withDeferrable(jobs: TimedJob[], share: number, windowMs: number, seed: number): TimedJob[] {
  const rng = seededRng(seed + 7);
  return jobs.map((t) => {
    const deferrable = rng() < share ? { deadlineMs: t.job.submittedAtMs + (t.job.walltimeMs ?? t.runMs) + windowMs } : undefined;
    return { runMs: t.runMs, job: { ...t.job, durationMs: t.runMs, deferrable } };
  });
}

function main(): void {
  const carbon = carbonSignal(opts.carbon, opts.start);
  // Node failures are left out: a rerun after a failure can miss a deadline whatever the policy.
  const env = { ...environmentOf(loadClusterFile(opts.cluster), carbon), failures: undefined };
  const nodes = mixedCluster(opts.nodes);
  // Jobs run an hour on average in the general pool; arrivals fill the days asked for.
  const next = mixedWorkload(seededRng(opts.seed), seededRng(opts.seed + 1), nodes, { load: opts.load, arrivals: 'poisson', generalMeanRunMs: HOUR_MS });
  const raw: TimedJob[] = [];
  for (let j = next(); j.job.submittedAtMs < opts.days * 24 * HOUR_MS; j = next()) raw.push(j);
  const jobs = withDeferrable(raw, opts.deferrableShare, opts.windowHours * HOUR_MS, opts.seed);

  const results: SimResult[] = policiesNamed('green-blind,green-spatial,green-aware').map((p) => simulate(jobs, nodes, p, env, { seed: opts.seed }));
  const [blind, spatial, aware] = results;
  const saved = (r: SimResult) => (blind.energy.carbonPerJobG > 0 ? Math.round((1 - r.energy.carbonPerJobG / blind.energy.carbonPerJobG) * 10_000) / 100 : 0);
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  log(`${jobs.length} jobs over ${opts.days} days on ${nodes.length} nodes, ${Math.round(opts.deferrableShare * 100)}% deferrable (deadline ${opts.windowHours} h past walltime); grid intensity from ${opts.carbon} from ${new Date(carbon.startMs).toISOString()}`);
  const rows: [string, (r: SimResult) => string | number][] = [
    ['carbon per job (g)', (r) => r.energy.carbonPerJobG],
    ['carbon saved vs green-blind', (r) => `${saved(r)}%`],
    ['green share of jobs’ energy', (r) => `${(r.energy.jobGreenShare * 100).toFixed(1)}%`],
    ['jobs’ energy (kWh)', (r) => r.energy.jobKwh],
    ['deferrable jobs', (r) => r.deferrable.jobs],
    ['  mean delay (s)', (r) => r.deferrable.meanDelayS],
    ['  deadline misses', (r) => r.deferrable.deadlineMisses],
    ['other jobs: mean wait (s)', (r) => r.deferrable.othersMeanWaitS],
    ['jobs completed', (r) => r.jobs.completed],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  log(`${''.padEnd(width)}  ${results.map((r) => r.policy.padStart(14)).join('')}`);
  for (const [label, f] of rows) log(`${label.padEnd(width)}  ${results.map((r) => String(f(r)).padStart(14)).join('')}`);
  process.stdout.write(
    `${JSON.stringify({
      policy: 'green',
      carbonPerJobG: aware.energy.carbonPerJobG,
      baselineCarbonPerJobG: blind.energy.carbonPerJobG,
      carbonSavedPct: saved(aware),
      greenShare: aware.energy.jobGreenShare,
      baselineGreenShare: blind.energy.jobGreenShare,
      meanDelayS: aware.deferrable.meanDelayS,
      deadlineMisses: aware.deferrable.deadlineMisses,
      othersMeanWaitS: aware.deferrable.othersMeanWaitS,
      baselineOthersMeanWaitS: blind.deferrable.othersMeanWaitS,
      spatialCarbonSavedPct: saved(spatial),
      jobs: jobs.length,
      deferrableJobs: aware.deferrable.jobs,
    })}\n`,
  );
}

try {
  main();
} catch (err) {
  process.stderr.write(`eval:green: ${(err as Error).message}\n`);
  process.exit(2);
}
