import { nodeSpecSchema, type NodeSpec, type Pool } from '../protocol';
import type { SchedJob } from '../core';
import { exponential, pickWeighted, randInt, type Rng } from './rng';
import { poolDemand, poolSupply } from '../green/booking';

const GiB = 1024 ** 3;

/** Paired eastern cities, the cluster's tenants in synthetic workloads. */
export const SYNTHETIC_TENANTS = ['beijing', 'shanghai', 'guangzhou', 'shenzhen', 'hangzhou', 'tianjin'] as const;

/** Numeric priority of each class name used in synthetic workloads (the service reads its own from config). */
export const SYNTHETIC_PRIORITIES: Readonly<Record<string, number>> = { urgent: 1000, normal: 500, batch: 100, 'best-effort': 0 };

interface NodeType {
  prefix: string;
  pool: Pool;
  share: number;
  perRack: number;
  make: (i: number) => Omit<NodeSpec, 'id' | 'zone' | 'rack'>;
}

const cpu = (cores: number, memGiB: number) => ({ cpuMillis: cores * 1000, memBytes: memGiB * GiB, gpus: 0, gpuMemBytes: 0, extended: {} });
const gpuBox = (cores: number, memGiB: number, gpus: number, gpuMemGiB: number) => ({ ...cpu(cores, memGiB), gpus, gpuMemBytes: gpuMemGiB * GiB });

/**
 * The node types of a mixed Qingyang-like cluster: about 60% general (CPU), 30% intelligent (8 accelerators
 * each: A800, H20 and Ascend 910B, the last tainted so only jobs that ask for it land there) and 10% super
 * (HPC nodes on InfiniBand).
 */
const NODE_TYPES: readonly NodeType[] = [
  { prefix: 'gen', pool: 'general', share: 0.42, perRack: 40, make: () => ({ pool: 'general', labels: {}, taints: [], capacity: cpu(64, 256), securityLevel: 'internal', ratedPowerWatts: 500 }) },
  { prefix: 'genx', pool: 'general', share: 0.18, perRack: 40, make: () => ({ pool: 'general', labels: { disk: 'nvme' }, taints: [], capacity: cpu(96, 512), securityLevel: 'sensitive', ratedPowerWatts: 700 }) },
  { prefix: 'a800', pool: 'intelligent', share: 0.15, perRack: 16, make: () => ({ pool: 'intelligent', labels: { accelerator: 'nvidia' }, taints: [], capacity: gpuBox(128, 1024, 8, 80), gpuModel: 'A800', securityLevel: 'internal', ratedPowerWatts: 6500 }) },
  { prefix: 'h20', pool: 'intelligent', share: 0.09, perRack: 16, make: () => ({ pool: 'intelligent', labels: { accelerator: 'nvidia' }, taints: [], capacity: gpuBox(192, 2048, 8, 96), gpuModel: 'H20', securityLevel: 'internal', ratedPowerWatts: 5000 }) },
  {
    prefix: 'ascend',
    pool: 'intelligent',
    share: 0.06,
    perRack: 16,
    make: () => ({ pool: 'intelligent', labels: { accelerator: 'ascend' }, taints: [{ key: 'vendor', value: 'huawei', effect: 'NoSchedule' }], capacity: gpuBox(192, 1536, 8, 64), gpuModel: '910B', securityLevel: 'internal', ratedPowerWatts: 5600 }),
  },
  { prefix: 'hpc', pool: 'super', share: 0.1, perRack: 32, make: () => ({ pool: 'super', labels: { interconnect: 'ib' }, taints: [], capacity: cpu(64, 512), securityLevel: 'sensitive', ratedPowerWatts: 800 }) },
];

/** A mixed cluster of `nodeCount` nodes in two zones, racks filled in order. Deterministic. */
export function mixedCluster(nodeCount: number): NodeSpec[] {
  const specs: NodeSpec[] = [];
  let assigned = 0;
  NODE_TYPES.forEach((type, t) => {
    const count = t === NODE_TYPES.length - 1 ? nodeCount - assigned : Math.round(nodeCount * type.share);
    assigned += count;
    for (let i = 0; i < count; i++) {
      const rack = Math.floor(i / type.perRack);
      specs.push(
        nodeSpecSchema.parse({
          ...type.make(i),
          id: `${type.prefix}-${String(i).padStart(5, '0')}`,
          zone: rack % 2 === 0 ? 'qy-a' : 'qy-b',
          rack: `${type.prefix}-r${rack}`,
        }),
      );
    }
  });
  return specs;
}

/** A synthetic job with its virtual run time. */
export interface TimedJob {
  job: SchedJob;
  /** How long the job runs once started. */
  runMs: number;
}

const TOLERATE_ASCEND = [{ key: 'vendor', operator: 'Equal' as const, value: 'huawei', effect: 'NoSchedule' as const }];

/** What one job asks for, before its run time is set. */
function drawJob(rng: Rng, id: string, submittedAtMs: number): SchedJob {
  const pool = pickWeighted<Pool>(rng, [
    ['general', 55],
    ['intelligent', 35],
    ['super', 10],
  ]);
  const tenant = SYNTHETIC_TENANTS[randInt(rng, 0, SYNTHETIC_TENANTS.length - 1)];
  const priorityClass = pickWeighted(rng, [
    ['urgent', 2],
    ['normal', 70],
    ['batch', 20],
    ['best-effort', 8],
  ] as const);
  const base: SchedJob = {
    id,
    tenant,
    pool,
    priorityClass,
    priority: SYNTHETIC_PRIORITIES[priorityClass],
    task: { cpuMillis: 1000, memBytes: GiB, gpus: 0, gpuMilli: 0, gpuMemBytes: 0, extended: {} },
    tasks: 1,
    exclusive: false,
    constraints: { gpuModels: [], nodeSelector: {}, affinity: [], antiAffinity: [], preferred: [], tolerations: [] },
    dataClass: 'public',
    submittedAtMs,
  };
  if (pool === 'general') {
    const isGang = rng() < 0.1;
    const cores = isGang ? pickWeighted(rng, [[4, 1], [8, 1], [16, 1]]) : pickWeighted(rng, [[1, 25], [2, 25], [4, 25], [8, 15], [16, 10]]);
    base.task = { ...base.task, cpuMillis: cores * 1000, memBytes: cores * pickWeighted(rng, [[2, 1], [4, 2], [8, 1]]) * GiB };
    base.tasks = isGang ? randInt(rng, 2, 8) : 1;
    if (rng() < 0.05) base.constraints = { ...base.constraints, nodeSelector: { disk: 'nvme' } };
    return base;
  }
  if (pool === 'intelligent') {
    const kind = pickWeighted(rng, [['whole', 75], ['share', 15], ['gang', 10]] as const);
    const model = rng() < 0.3 ? pickWeighted(rng, [['A800', 5], ['H20', 3], ['910B', 2]]) : undefined;
    if (model) base.constraints = { ...base.constraints, gpuModels: [model], tolerations: model === '910B' ? TOLERATE_ASCEND : [] };
    if (kind === 'share') {
      const gpuMilli = pickWeighted(rng, [[100, 2], [200, 2], [250, 2], [300, 1], [500, 2], [700, 1]]);
      base.task = { ...base.task, cpuMillis: 4000, memBytes: 16 * GiB, gpuMilli };
      return base;
    }
    const gpus = kind === 'gang' ? pickWeighted(rng, [[4, 1], [8, 3]]) : pickWeighted(rng, [[1, 40], [2, 25], [4, 20], [8, 15]]);
    base.task = { ...base.task, cpuMillis: gpus * 12_000, memBytes: gpus * 64 * GiB, gpus, gpuMemBytes: 64 * GiB };
    base.tasks = kind === 'gang' ? pickWeighted(rng, [[2, 4], [4, 3], [8, 2], [16, 1]]) : 1;
    return base;
  }
  base.task = { ...base.task, cpuMillis: 64_000, memBytes: 256 * GiB };
  base.tasks = pickWeighted(rng, [[2, 30], [4, 25], [8, 20], [16, 12], [32, 8], [64, 5]]);
  base.exclusive = true;
  return base;
}

/** How arrivals are spaced: evenly, as a Poisson process, or in bursts (same mean rate). */
export type ArrivalProcess = 'uniform' | 'poisson' | 'bursty';

/** Options of a synthetic mixed workload. */
export interface MixedWorkloadOptions {
  /** Offered load as a multiple of each pool's capacity (above 1 the pools fill and refuse some jobs). */
  load?: number;
  /** Mean virtual time between arrivals. */
  intervalMs?: number;
  /** Instead of intervalMs: space arrivals so general-pool jobs run this long on average. */
  generalMeanRunMs?: number;
  arrivals?: ArrivalProcess;
}

/** Mean jobs per burst of `bursty` arrivals. */
const MEAN_BURST = 10;
/** Batch and best-effort jobs that may wait for greener power, and for how long. */
const DEFERRABLE_SHARE = 0.3;
const DEFERRABLE_MAX_DELAY_S = 6 * 3600;

/**
 * An endless stream of mixed jobs, one arrival per `intervalMs` on average, with exponential run times
 * whose mean is set per pool so that the offered load is `load` times the pool's capacity: the cluster
 * fills up, stays near full while jobs finish and arrive, and refuses some. Every job declares a walltime
 * of 1.5 times its run time (rounded up to a second); some batch and best-effort jobs are deferrable by
 * up to 6 hours. Jobs are drawn one at a time (a million-job run holds no job array); the per-pool
 * demand is estimated from a pilot sample. Deterministic per seed.
 */
export function mixedWorkload(rng: Rng, pilotRng: Rng, nodes: readonly NodeSpec[], options: MixedWorkloadOptions = {}): () => TimedJob {
  const load = options.load ?? 1.05;
  const pilotSize = 20_000;
  const demandPerArrival: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  for (let i = 0; i < pilotSize; i++) {
    const job = drawJob(pilotRng, 'pilot', 0);
    demandPerArrival[job.pool] += poolDemand(job) / pilotSize;
  }
  const supply = poolSupply(nodes);
  const intervalMs = options.generalMeanRunMs ? (options.generalMeanRunMs * demandPerArrival.general) / (load * supply.general) : (options.intervalMs ?? 1);
  // Little's law: concurrent demand = arrival rate × mean run time × demand per arrival.
  const meanRunMs = (pool: Pool) => (demandPerArrival[pool] > 0 ? (load * supply[pool] * intervalMs) / demandPerArrival[pool] : 1);
  const nextArrival = arrivalTimes(rng, options.arrivals ?? 'uniform', intervalMs);
  let i = 0;
  return () => {
    const job = drawJob(rng, `job-${String(i).padStart(8, '0')}`, nextArrival(i));
    i++;
    const runMs = Math.max(1, Math.round(exponential(rng, meanRunMs(job.pool))));
    const walltimeMs = Math.ceil((runMs * 1.5) / 1000) * 1000;
    const deferrable = (job.priorityClass === 'batch' || job.priorityClass === 'best-effort') && rng() < DEFERRABLE_SHARE ? { maxDelaySeconds: DEFERRABLE_MAX_DELAY_S } : undefined;
    return { job: { ...job, durationMs: runMs, walltimeMs, deferrable }, runMs };
  };
}

/** Arrival times (integers, non-decreasing) of the i-th job, for each arrival process. */
function arrivalTimes(rng: Rng, process: ArrivalProcess, intervalMs: number): (i: number) => number {
  if (process === 'uniform') return (i) => i * intervalMs;
  let t = 0;
  let leftInBurst = 0;
  return () => {
    if (process === 'poisson') t += exponential(rng, intervalMs);
    else if (leftInBurst > 0) leftInBurst--;
    else {
      // A burst: a geometric number of jobs at once, the gaps between bursts keeping the mean rate.
      t += exponential(rng, intervalMs * MEAN_BURST);
      leftInBurst = Math.floor(exponential(rng, MEAN_BURST));
    }
    return Math.round(t);
  };
}
