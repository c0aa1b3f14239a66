/**
 * Placement benchmark: decisions per second and per-decision latency of the indexed placement core,
 * against a naive full scan on the same workload and states, plus allocation quality.
 *
 *   npm run bench:placement                      # N = 1,000, 50,000 and 10,000 (the last JSON line is N = 10,000)
 *   npm run bench:placement -- --nodes 10000 --jobs 200000
 *   npm run bench:placement -- --nodes 10000 --intelligent fgd   # FragmentationGradient in the intelligent pool
 *
 * A mixed cluster (about 60% general, 30% intelligent with 8 GPUs each, 10% super) receives a mixed job
 * stream (single tasks, GPU jobs of 1/2/4/8 GPUs and GPU shares, gangs of 2–64 tasks) in virtual time,
 * one arrival per millisecond, while jobs finish and release their resources; run times are set so the
 * offered load is a little above capacity, so the cluster fills, stays near full and refuses some jobs.
 * Every `stride`-th decision is also made by the naive baseline on the same state, before the indexed
 * path commits its own, and the two must agree on whether the job fits.
 */
import { Command } from 'commander';
import * as hdr from 'hdr-histogram-js';
import { ClusterState, DEFAULT_POLICY, observeGpuDemand, placeJob, placeJobNaive, prepareJob, withGpuDemandMix, withPoolPolicy, type Policy } from '../src/core';
import { mixedCluster, mixedWorkload } from '../src/sim/synthetic';
import { MinHeap } from '../src/core/min-heap';
import { seededRng } from '../src/sim/rng';
import { gpuFragmentation } from '../src/sim/fragmentation';
import { GPU_MILLI_PER_GPU as GPU_MILLI, POOLS, type Pool } from '../src/protocol';

interface Options {
  nodes: number[];
  /** `default`: DEFAULT_POLICY; `fgd`: its intelligent pool also weighs FragmentationGradient, fed by the arrivals. */
  intelligent: 'default' | 'fgd';
  jobs?: number;
  jobsPerNode: number;
  naiveSamples: number;
  load: number;
  seed: number;
}

interface Result {
  nodes: number;
  jobs: number;
  decisionsPerSec: number;
  p50Micros: number;
  p99Micros: number;
  p999Micros: number;
  /** Decisions of the intelligent pool alone. */
  intelligentP50Micros: number;
  intelligentP99Micros: number;
  naiveDecisionsPerSec: number;
  naiveP99Micros: number;
  naiveDecisions: number;
  speedup: number;
  disagreements: number;
  placed: number;
  refused: number;
  allocatedAtFirstRefusal: Record<Pool, number | null>;
  allocatedAtEnd: Record<Pool, number>;
  partlyUsedGpuServerShare: number;
  gpuFragmentation: number;
  releasesPerSec: number;
}

const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: 3 });

/** Allocated share of each pool's scarce resource: CPU (general), GPU (intelligent), nodes (super). */
function allocatedShare(cluster: ClusterState, pool: Pool): number {
  const s = cluster.poolSummary(pool);
  if (pool === 'intelligent') return s.allocated.gpuMilli / Math.max(1, s.allocatable.gpus * GPU_MILLI);
  if (pool === 'super') return cluster.nodesOf('super').filter((n) => !n.isIdle).length / Math.max(1, cluster.nodesOf('super').length);
  return s.allocated.cpuMillis / Math.max(1, s.allocatable.cpuMillis);
}

/** The policy under test: the default, or the default with FragmentationGradient in the intelligent pool. */
function policyOf(opts: Options): Policy {
  if (opts.intelligent === 'default') return DEFAULT_POLICY;
  const weights = { ...DEFAULT_POLICY.intelligent.scoreWeights, FragmentationGradient: 6 };
  return withGpuDemandMix(withPoolPolicy(DEFAULT_POLICY, { intelligent: { scoreWeights: weights } }));
}

function run(nodeCount: number, jobCount: number, opts: Options): Result {
  const policy = policyOf(opts);
  const specs = mixedCluster(nodeCount);
  const cluster = new ClusterState();
  for (const spec of specs) cluster.upsertNode(spec);
  const next = mixedWorkload(seededRng(opts.seed), seededRng(opts.seed + 1), specs, { load: opts.load });
  const ends = new MinHeap<string>();
  const indexed = histogram();
  const intelligent = histogram();
  const naive = histogram();
  // The naive scan costs about a microsecond per node: cap its work at ~20 million node visits per size.
  const naiveSamples = Math.max(50, Math.min(opts.naiveSamples, Math.floor(20_000_000 / nodeCount)));
  const stride = Math.max(1, Math.floor(jobCount / naiveSamples));
  const firstRefusal: Record<Pool, number | null> = { general: null, intelligent: null, super: null };
  const refusedGpu: { gpus: number; gpuMilli: number }[] = [];
  let indexedNs = 0;
  let naiveNs = 0;
  let naiveCount = 0;
  let releaseNs = 0;
  let releases = 0;
  let placed = 0;
  let refused = 0;
  let disagreements = 0;
  const progressEvery = Math.max(1, Math.floor(jobCount / 10));

  for (let i = 0; i < jobCount; i++) {
    const { job, runMs } = next();
    const now = job.submittedAtMs;
    const r0 = process.hrtime.bigint();
    let released = 0;
    while (ends.peekKey() <= now) {
      cluster.release(ends.pop()!);
      released++;
    }
    releaseNs += Number(process.hrtime.bigint() - r0);
    releases += released;

    let naiveOk: boolean | undefined;
    if (i % stride === 0) {
      const n0 = process.hrtime.bigint();
      const result = placeJobNaive(cluster, prepareJob(job, policy), policy);
      const ns = Number(process.hrtime.bigint() - n0);
      naiveNs += ns;
      naiveCount++;
      naive.recordValue(Math.max(1, ns));
      naiveOk = result.ok;
    }

    observeGpuDemand(policy, job);
    const t0 = process.hrtime.bigint();
    const result = placeJob(cluster, prepareJob(job, policy), policy);
    if (result.ok) cluster.reserve(result.placement);
    const ns = Number(process.hrtime.bigint() - t0);
    indexedNs += ns;
    indexed.recordValue(Math.max(1, ns));
    if (job.pool === 'intelligent') intelligent.recordValue(Math.max(1, ns));

    if (naiveOk !== undefined && naiveOk !== result.ok) disagreements++;
    if (result.ok) {
      placed++;
      ends.push(now + runMs, job.id);
    } else {
      refused++;
      firstRefusal[job.pool] ??= allocatedShare(cluster, job.pool);
      if (job.pool === 'intelligent') {
        refusedGpu.push({ gpus: job.task.gpus, gpuMilli: job.task.gpuMilli });
        if (refusedGpu.length > 200) refusedGpu.shift();
      }
    }
    if ((i + 1) % progressEvery === 0) process.stderr.write(`  ${nodeCount} nodes: ${i + 1}/${jobCount} decisions\r`);
  }
  process.stderr.write('\n');
  const allocatedAtEnd = Object.fromEntries(POOLS.map((pool) => [pool, round(allocatedShare(cluster, pool), 3)])) as Record<Pool, number>;
  const frag = gpuFragmentation(cluster, refusedGpu);
  const decisionsPerSec = jobCount / (indexedNs / 1e9);
  const naiveDecisionsPerSec = naiveCount / (naiveNs / 1e9);
  return {
    nodes: nodeCount,
    jobs: jobCount,
    decisionsPerSec: Math.round(decisionsPerSec),
    p50Micros: round(indexed.getValueAtPercentile(50) / 1000, 2),
    p99Micros: round(indexed.getValueAtPercentile(99) / 1000, 2),
    p999Micros: round(indexed.getValueAtPercentile(99.9) / 1000, 2),
    intelligentP50Micros: round(intelligent.getValueAtPercentile(50) / 1000, 2),
    intelligentP99Micros: round(intelligent.getValueAtPercentile(99) / 1000, 2),
    naiveDecisionsPerSec: Math.round(naiveDecisionsPerSec),
    naiveP99Micros: round(naive.getValueAtPercentile(99) / 1000, 2),
    naiveDecisions: naiveCount,
    speedup: round(decisionsPerSec / naiveDecisionsPerSec, 1),
    disagreements,
    placed,
    refused,
    allocatedAtFirstRefusal: Object.fromEntries(POOLS.map((p) => [p, firstRefusal[p] === null ? null : round(firstRefusal[p]!, 3)])) as Record<Pool, number | null>,
    allocatedAtEnd,
    partlyUsedGpuServerShare: round(frag.partlyUsedGpuServerShare, 3),
    gpuFragmentation: round(frag.gpuFragmentation, 4),
    releasesPerSec: Math.round(releases / Math.max(1e-9, releaseNs / 1e9)),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function printTable(results: Result[]): void {
  const rows = results.map((r) => ({
    nodes: r.nodes,
    jobs: r.jobs,
    'decisions/s': r.decisionsPerSec,
    'p50 µs': r.p50Micros,
    'p99 µs': r.p99Micros,
    'p99.9 µs': r.p999Micros,
    'intelligent p50 µs': r.intelligentP50Micros,
    'intelligent p99 µs': r.intelligentP99Micros,
    'naive/s': r.naiveDecisionsPerSec,
    'naive p99 µs': r.naiveP99Micros,
    speedup: `${r.speedup}×`,
    disagree: r.disagreements,
    'refused %': round((100 * r.refused) / r.jobs, 1),
  }));
  console.table(rows);
  console.table(
    results.map((r) => ({
      nodes: r.nodes,
      'general@1st refusal': r.allocatedAtFirstRefusal.general,
      'intelligent@1st refusal': r.allocatedAtFirstRefusal.intelligent,
      'super@1st refusal': r.allocatedAtFirstRefusal.super,
      'general@end': r.allocatedAtEnd.general,
      'intelligent@end': r.allocatedAtEnd.intelligent,
      'super@end': r.allocatedAtEnd.super,
      'partly used GPU servers': r.partlyUsedGpuServerShare,
      'GPU fragmentation': r.gpuFragmentation,
    })),
  );
}

const program = new Command()
  .name('bench:placement')
  .description('Placement core benchmark: indexed path vs naive full scan')
  .option('--nodes <list>', 'cluster sizes, comma-separated', '1000,50000,10000')
  .option('--jobs <n>', 'decisions per size (default: jobs-per-node × nodes)')
  .option('--jobs-per-node <n>', 'decisions per node when --jobs is not given', '20')
  .option('--naive-samples <n>', 'decisions also made by the naive baseline, spread over the run (capped at 20M node visits)', '2000')
  .option('--load <x>', 'offered load as a multiple of capacity', '1.2')
  .option('--seed <n>', 'workload seed', '42')
  .option('--intelligent <scores>', 'scores of the intelligent pool: default, or fgd (the default plus FragmentationGradient)', 'default')
  .parse();

const raw = program.opts();
if (raw.intelligent !== 'default' && raw.intelligent !== 'fgd') throw new Error(`--intelligent: ${raw.intelligent} is not default or fgd`);
const opts: Options = {
  intelligent: raw.intelligent,
  nodes: String(raw.nodes).split(',').map((s) => Number(s.trim())),
  jobs: raw.jobs === undefined ? undefined : Number(raw.jobs),
  jobsPerNode: Number(raw.jobsPerNode),
  naiveSamples: Number(raw.naiveSamples),
  load: Number(raw.load),
  seed: Number(raw.seed),
};
for (const n of opts.nodes) if (!Number.isInteger(n) || n < 10) throw new Error(`--nodes: ${n} is not a cluster size`);

const results: Result[] = [];
for (const n of opts.nodes) {
  const jobs = opts.jobs ?? Math.max(50_000, opts.jobsPerNode * n);
  results.push(run(n, jobs, opts));
  printTable(results.slice(-1));
}
console.log('\nSummary (decision cost should grow far slower than the node count):');
printTable([...results].sort((a, b) => a.nodes - b.nodes));
for (const r of results) {
  console.log(
    JSON.stringify({
      nodes: r.nodes,
      jobs: r.jobs,
      decisionsPerSec: r.decisionsPerSec,
      p50Micros: r.p50Micros,
      p99Micros: r.p99Micros,
      p999Micros: r.p999Micros,
      intelligentP50Micros: r.intelligentP50Micros,
      intelligentP99Micros: r.intelligentP99Micros,
      naiveDecisionsPerSec: r.naiveDecisionsPerSec,
      speedup: r.speedup,
      disagreements: r.disagreements,
      gpuFragmentation: r.gpuFragmentation,
      partlyUsedGpuServerShare: r.partlyUsedGpuServerShare,
      allocatedAtFirstRefusal: r.allocatedAtFirstRefusal,
    }),
  );
}
