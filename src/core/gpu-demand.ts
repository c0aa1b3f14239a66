import { GPU_MILLI_PER_GPU, POOLS, type Pool } from '../protocol';
import type { Policy, PoolPolicy } from './framework';
import type { SchedJob } from './model';

/**
 * One typical GPU request and its share of the demand (a "typical pod" in FGD, Weng et al., ATC'23):
 * `gpuCount` GPUs of which each must have `milliPerGpu` free (1000 for whole GPUs, less for a share),
 * `cpuMillis` cores and `memBytes` of memory beside them, on a GPU of one of `gpuModels` (null: any model).
 */
export interface DemandShape {
  readonly gpuCount: number;
  readonly milliPerGpu: number;
  readonly cpuMillis: number;
  readonly memBytes: number;
  readonly gpuModels: ReadonlySet<string> | null;
  /** Share of the recent demand, in (0, 1]; the shapes of one mix sum to 1. */
  readonly weight: number;
}

/** What a request looks like to the mix: a task's resources and the GPU models it accepts. */
export interface GpuRequestShape {
  gpus: number;
  gpuMilli: number;
  cpuMillis: number;
  memBytes: number;
  gpuModels?: readonly string[];
}

/**
 * The mix used while nothing has been observed: one whole GPU, no CPU or memory. Against it a node's
 * fragments are the free shares of partly used GPUs, so the score then behaves as a best-fit packer.
 */
export const FALLBACK_DEMAND: readonly DemandShape[] = Object.freeze([{ gpuCount: 1, milliPerGpu: GPU_MILLI_PER_GPU, cpuMillis: 0, memBytes: 0, gpuModels: null, weight: 1 }]);

/** Settings of a demand mix. */
export interface GpuDemandMixOptions {
  /** Requests remembered: the mix is that of the last `windowRequests` GPU requests (tasks). */
  windowRequests?: number;
  /** The typical shapes are the most frequent ones that together make up at least this share (FGD's 95%). */
  coverage?: number;
  /** At most this many typical shapes, which bounds the cost of a score. */
  maxShapes?: number;
}

interface Counted {
  key: string;
  shape: Omit<DemandShape, 'weight'>;
  count: number;
}

/**
 * The recent mix of GPU demands of a pool, which the FragmentationGradient score measures fragmentation
 * against. The caller observes each GPU request as it arrives (submission in the service, arrival in the
 * simulator); plugins only read `typical()`. Pure and deterministic: recency is counted in requests, not
 * time, and the same observations give the same mix.
 *
 * A policy that uses the score owns one mix per pool (see `withGpuDemandMix`): a shared instance would
 * mix the demands of unrelated runs.
 */
export class GpuDemandMix {
  readonly windowRequests: number;
  readonly coverage: number;
  readonly maxShapes: number;
  /** Keys of the remembered requests, oldest first, in a ring. */
  private readonly ring: (string | undefined)[];
  private ringNext = 0;
  private remembered = 0;
  private readonly counts = new Map<string, Counted>();
  private snapshot: readonly DemandShape[] = FALLBACK_DEMAND;
  /** Requests observed since the mix was created or reset. */
  private observed = 0;

  constructor(options: GpuDemandMixOptions = {}) {
    this.windowRequests = options.windowRequests ?? 1000;
    this.coverage = options.coverage ?? 0.95;
    this.maxShapes = options.maxShapes ?? 32;
    if (!Number.isInteger(this.windowRequests) || this.windowRequests < 1) throw new Error('windowRequests must be a positive integer');
    if (!(this.coverage > 0 && this.coverage <= 1)) throw new Error('coverage must be in (0, 1]');
    if (!Number.isInteger(this.maxShapes) || this.maxShapes < 1) throw new Error('maxShapes must be a positive integer');
    this.ring = new Array(this.windowRequests);
  }

  /** Requests in the window now. */
  get size(): number {
    return this.remembered;
  }

  /** Remembers `tasks` requests of this shape, forgetting the oldest beyond the window. Requests without GPUs are ignored. */
  observe(request: GpuRequestShape, tasks = 1): void {
    if (request.gpus <= 0 && request.gpuMilli <= 0) return;
    const gpuCount = request.gpus > 0 ? request.gpus : 1;
    const milliPerGpu = request.gpus > 0 ? GPU_MILLI_PER_GPU : request.gpuMilli;
    const models = request.gpuModels && request.gpuModels.length > 0 ? [...request.gpuModels].sort() : null;
    const key = `${gpuCount}/${milliPerGpu}/${request.cpuMillis}/${request.memBytes}/${models ? models.join('|') : ''}`;
    // A gang larger than the window would only displace itself: remember at most a window's worth.
    for (let t = Math.min(tasks, this.windowRequests); t > 0; t--) {
      const old = this.ring[this.ringNext];
      if (old !== undefined) this.forget(old);
      else this.remembered++;
      this.ring[this.ringNext] = key;
      this.ringNext = (this.ringNext + 1) % this.windowRequests;
      const counted = this.counts.get(key);
      if (counted) counted.count++;
      else this.counts.set(key, { key, shape: { gpuCount, milliPerGpu, cpuMillis: request.cpuMillis, memBytes: request.memBytes, gpuModels: models ? new Set(models) : null }, count: 1 });
    }
    // The typical shapes are recomputed at fixed counts of observations (powers of two while the window
    // fills, then every sixteenth of a window), never on a read: what a score sees depends only on what was
    // observed, not on how often it was asked, and a score costs no sort.
    const before = this.observed;
    this.observed += Math.min(tasks, this.windowRequests);
    const every = Math.max(1, this.windowRequests >> 4);
    const crossedPowerOfTwo = before < this.windowRequests && Math.clz32(this.observed) !== Math.clz32(before);
    if (crossedPowerOfTwo || Math.floor(this.observed / every) !== Math.floor(before / every)) this.snapshot = this.computeTypical();
  }

  /** Forgets everything observed (a rebuild starts the mix over). */
  reset(): void {
    this.ring.fill(undefined);
    this.ringNext = 0;
    this.remembered = 0;
    this.observed = 0;
    this.counts.clear();
    this.snapshot = FALLBACK_DEMAND;
  }

  /** The typical shapes, most frequent first, weights summing to 1; FALLBACK_DEMAND before anything is observed. */
  typical(): readonly DemandShape[] {
    return this.snapshot;
  }

  private forget(key: string): void {
    const counted = this.counts.get(key)!;
    if (--counted.count === 0) this.counts.delete(key);
  }

  private computeTypical(): readonly DemandShape[] {
    // Ties go to the key, so the mix does not depend on the order shapes were first seen.
    const byCount = [...this.counts.values()].sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const wanted = this.coverage * this.remembered;
    const chosen: Counted[] = [];
    let covered = 0;
    for (const c of byCount) {
      if (covered >= wanted || chosen.length >= this.maxShapes) break;
      chosen.push(c);
      covered += c.count;
    }
    return Object.freeze(chosen.map((c) => Object.freeze({ ...c.shape, weight: c.count / covered })));
  }
}

/**
 * A copy of `policy` in which every pool that weighs the FragmentationGradient score has a fresh demand
 * mix of its own, for one run or one scheduler: feed it with observeGpuDemand.
 */
export function withGpuDemandMix(policy: Policy, options?: GpuDemandMixOptions): Policy {
  const out = {} as Record<Pool, PoolPolicy>;
  for (const pool of POOLS) {
    const p = policy[pool];
    out[pool] = (p.scoreWeights.FragmentationGradient ?? 0) > 0 ? { ...p, gpuDemand: new GpuDemandMix(options) } : p;
  }
  return out;
}

/** A job's request per task, as a demand mix sees it. */
export function gpuRequestOf(job: SchedJob): GpuRequestShape {
  const t = job.task;
  return { gpus: t.gpus, gpuMilli: t.gpuMilli, cpuMillis: t.cpuMillis, memBytes: t.memBytes, gpuModels: job.constraints.gpuModels };
}

/** Tells the mix of the job's pool (if it keeps one) about the job's GPU request, once per task. */
export function observeGpuDemand(policy: Policy, job: SchedJob): void {
  policy[job.pool].gpuDemand?.observe(gpuRequestOf(job), job.tasks);
}
