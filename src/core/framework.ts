import type { Pool } from '../protocol';
import type { GpuDemandMix } from './gpu-demand';
import type { ReasonCode, SchedJob } from './model';
import type { NodeRuntime, PreparedTask } from './node-runtime';

/** The highest score a score plugin gives; the framework weights and sums the plugins' scores. */
export const MAX_NODE_SCORE = 100;

/** A job with the work that depends only on it done once (prepare(job) in the framework's terms). */
export interface PreparedJob {
  readonly job: SchedJob;
  readonly task: PreparedTask;
  /** Accepted GPU models, or null for any. */
  readonly gpuModels: ReadonlySet<string> | null;
  readonly policy: PoolPolicy;
  /** Score plugins with a non-zero weight in the job's pool. */
  readonly scorers: ReadonlyArray<{ readonly plugin: ScorePlugin; readonly weight: number }>;
}

/** A filter's verdict: null when the node passes, else the reason it does not. */
export type FilterVerdict = ReasonCode | null;

/** The node passes. */
export const pass = (): FilterVerdict => null;
/** The node is rejected for `reason`. */
export const reject = (reason: ReasonCode): FilterVerdict => reason;

/**
 * Decides whether a node can take the job at all.
 * `static` filters read only attributes shared by a node group (labels, taints, model, level, allocatable),
 * so the indexed path runs them once per group; `dynamic` ones read live state and run per node.
 */
export interface FilterPlugin {
  readonly name: string;
  readonly scope: 'static' | 'dynamic';
  filter(job: PreparedJob, node: NodeRuntime): FilterVerdict;
}

/** Ranks a feasible node from 0 to MAX_NODE_SCORE (an integer); plugins never read each other's state. */
export interface ScorePlugin {
  readonly name: string;
  score(job: PreparedJob, node: NodeRuntime): number;
}

/** Scales a fraction in [0, 1] to an integer score. */
export function fractionScore(fraction: number): number {
  if (!(fraction > 0)) return 0;
  if (fraction >= 1) return MAX_NODE_SCORE;
  return Math.floor(fraction * MAX_NODE_SCORE);
}

/** Placement rules for one pool: which scores count and how much, how candidates are ordered and sampled. */
export interface PoolPolicy {
  /** Score plugin name → weight (0 turns a plugin off). */
  scoreWeights: Readonly<Record<string, number>>;
  /** 'pack' offers the tightest nodes first; 'spread' the emptiest, rotating the start. */
  candidateOrder: 'pack' | 'spread';
  /**
   * Feasible nodes to score per decision, shared out over the node groups that pass the static filters
   * (kube-scheduler's percentageOfNodesToScore, as a count: the index already offers the best candidates first).
   */
  nodesToScore: number;
  /**
   * Feasible nodes a gang's search for a single rack looks at once the gang could already be placed over
   * several racks; past it the gang takes the fewest racks among the nodes seen.
   */
  gangSearchNodes: number;
  /** Tasks take whole nodes in this pool. */
  exclusive: boolean;
  /**
   * EASY backfilling: the first job of the queue that does not fit gets a reservation from the running
   * jobs' walltimes, and later jobs start only if they do not delay it. Without it, any job that fits starts.
   */
  backfill: boolean;
  /**
   * How jobs that declared they can wait (deferrable) are placed, where it differs from the pool's others:
   * the candidate order, and score weights laid over the pool's (see forDeferrable).
   */
  deferrable?: { candidateOrder?: PoolPolicy['candidateOrder']; scoreWeights?: Readonly<Record<string, number>> };
  /**
   * The pool's recent mix of GPU demands, which the FragmentationGradient score measures fragmentation
   * against. Owned and fed by the caller (it observes requests as they arrive); absent, the score uses
   * FALLBACK_DEMAND. Copies of a policy made with withPoolPolicy share it.
   */
  gpuDemand?: GpuDemandMix;
}

/** A placement policy: one PoolPolicy per pool. Changing a policy never touches a plugin. */
export type Policy = Readonly<Record<Pool, PoolPolicy>>;
