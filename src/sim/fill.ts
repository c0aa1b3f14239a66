/**
 * Fill mode: the experiment of FGD (Weng et al., USENIX ATC'23, §5): tasks sampled from a trace arrive one
 * by one and never leave, each placed once or failed, until the GPUs they request reach the cluster's GPU
 * capacity. What a policy leaves unallocated at that point is GPU capacity lost to fragmentation (and to
 * tasks that fit nowhere). No queue, no time, no departures: only placement quality is measured.
 */
import { ClusterState, GpuDemandMix, gpuFragmentationOf, gpuRequestOf, observeGpuDemand, placeJob, prepareJob, withGpuDemandMix, type SchedJob } from '../core';
import { GPU_MILLI_PER_GPU, type NodeSpec } from '../protocol';
import type { SimPolicy } from './policies';
import { seededRng, type Rng } from './rng';
import type { TimedJob } from './synthetic';

/** Points of the curves: one per percent of the cluster's GPU capacity requested, 0% to 100%. */
export const FILL_CURVE_POINTS = 101;

/** What one policy did in one fill. */
export interface FillRun {
  policy: string;
  seed: number;
  /** Tasks sampled and offered, placed, and failed (no room, or never fitting any node). */
  arrivedTasks: number;
  placedTasks: number;
  failedTasks: number;
  /** GPUs requested by the arrived tasks, as a share of the cluster's GPU capacity (just under 1). */
  arrivedGpuShare: number;
  /** GPUs allocated, as a share of capacity. */
  allocatedGpuShare: number;
  /** 1 − allocatedGpuShare: GPU capacity left unallocated once the requests reached capacity (FGD's measure). */
  unallocatedGpuShare: number;
  /** FGD's expected fragmentation at the end, against the mix of the arrived GPU requests, as a share of capacity. */
  fragmentedGpuShare: number;
  /**
   * One point each time the requests pass another percent of capacity (index = percent): the share
   * requested (just past that percent), allocated, and fragmented at that moment.
   */
  curve: { arrivedGpuShare: number[]; allocatedGpuShare: number[]; fragmentedGpuShare: number[] };
  wallMs: number;
}

/** Options of a fill. */
export interface FillOptions {
  seed: number;
}

/**
 * Samples `pods` with `seed` (in a random order without repeats; the trace again in a new order when it
 * runs out) and places each once on an empty cluster of `nodes` under `policy`, until the next task would
 * take the requested GPUs past the cluster's GPU capacity. Policies that weigh FragmentationGradient learn
 * the demand mix from the arrivals only, as a scheduler would, never from the trace ahead.
 */
export function fill(pods: readonly TimedJob[], nodes: readonly NodeSpec[], policy: SimPolicy, options: FillOptions): FillRun {
  const started = performance.now();
  const cluster = new ClusterState();
  for (const spec of nodes) cluster.upsertNode(spec);
  const gpuNodes = cluster.nodes().filter((n) => n.allocatable.gpus > 0);
  const capacityMilli = gpuNodes.reduce((sum, n) => sum + n.allocatable.gpus * GPU_MILLI_PER_GPU, 0);
  if (capacityMilli === 0) throw new Error('fill mode needs a cluster with GPUs');
  if (!pods.some((p) => gpuMilliOf(p.job) > 0)) throw new Error('fill mode needs a trace with GPU requests');

  const placement = withGpuDemandMix(policy.placement);
  // Fragmentation is reported against the mix of everything arrived so far, the same for every policy
  // (a policy's own mix, if it keeps one, is only what it learned to place by).
  const measured = new GpuDemandMix({ windowRequests: Math.max(1000, pods.length) });
  const next = sampler(pods.length, seededRng(options.seed));
  let arrivedMilli = 0;
  let allocatedMilli = 0;
  let arrived = 0;
  let placed = 0;
  const curve: FillRun['curve'] = { arrivedGpuShare: [0], allocatedGpuShare: [0], fragmentedGpuShare: [0] };
  const addPoint = () => {
    curve.arrivedGpuShare.push(round(arrivedMilli / capacityMilli));
    curve.allocatedGpuShare.push(round(allocatedMilli / capacityMilli));
    curve.fragmentedGpuShare.push(round(gpuFragmentationOf(gpuNodes, measured.typical()).fragmentMilli / capacityMilli));
  };

  for (;;) {
    const sampled = pods[next()].job;
    const demandMilli = gpuMilliOf(sampled);
    if (arrivedMilli + demandMilli > capacityMilli) break;
    // A task drawn again is a new task: ids must stay unique on the cluster.
    const job: SchedJob = { ...sampled, id: `${sampled.id}~${arrived}` };
    arrived++;
    arrivedMilli += demandMilli;
    observeGpuDemand(placement, job);
    measured.observe(gpuRequestOf(job), job.tasks);
    const result = placeJob(cluster, prepareJob(job, placement), placement);
    if (result.ok) {
      cluster.reserve(result.placement);
      allocatedMilli += demandMilli;
      placed++;
    }
    // One point each time the requests pass another percent of capacity (a large task may pass several).
    while (curve.allocatedGpuShare.length < FILL_CURVE_POINTS && arrivedMilli * 100 >= curve.allocatedGpuShare.length * capacityMilli) addPoint();
  }
  // The last points are the end state, wherever the requests stopped short of 100%.
  while (curve.allocatedGpuShare.length < FILL_CURVE_POINTS) addPoint();
  return {
    policy: policy.name,
    seed: options.seed,
    arrivedTasks: arrived,
    placedTasks: placed,
    failedTasks: arrived - placed,
    arrivedGpuShare: round(arrivedMilli / capacityMilli),
    allocatedGpuShare: round(allocatedMilli / capacityMilli),
    unallocatedGpuShare: round(1 - allocatedMilli / capacityMilli),
    fragmentedGpuShare: curve.fragmentedGpuShare[FILL_CURVE_POINTS - 1],
    curve,
    wallMs: Math.round(performance.now() - started),
  };
}

/** Milli-GPUs a job requests over all its tasks. */
function gpuMilliOf(job: SchedJob): number {
  return job.tasks * (job.task.gpus * GPU_MILLI_PER_GPU + job.task.gpuMilli);
}

/** Indices 0..n-1 in a random order without repeats (an incremental Fisher–Yates), starting over when all are drawn. */
function sampler(n: number, rng: Rng): () => number {
  const order = Array.from({ length: n }, (_, i) => i);
  let left = 0;
  return () => {
    if (left === 0) left = n;
    const pick = Math.floor(rng() * left);
    left--;
    [order[pick], order[left]] = [order[left], order[pick]];
    return order[left];
  };
}

function round(x: number): number {
  return Math.round(x * 1e5) / 1e5;
}
