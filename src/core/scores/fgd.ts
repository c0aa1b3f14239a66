import { fractionScore, type ScorePlugin } from '../framework';
import { FALLBACK_DEMAND, type DemandShape } from '../gpu-demand';
import { expectedFragmentMilli, freeGpuMilli, freeGpuMilliAfter } from '../gpu-fragmentation';
import type { NodeRuntime } from '../node-runtime';

/**
 * How steeply the score falls as fragmentation grows: a growth of this many milli-GPUs scores about 27,
 * no change 50, the same shrinkage about 73 (the logistic curve of FGD's reference scheduler).
 */
const GROWTH_SCALE_MILLI = 1000;

// Scratch space for the free shares before and after the task: the score runs on the hot path.
let before = new Int32Array(16);
let after = new Int32Array(16);

/** A node's fragmentation as last computed, with what it was computed from. */
interface Memo {
  mix: readonly DemandShape[];
  /** The node's description (GPU model, allocatable), replaced as a whole when it changes. */
  spec: NodeRuntime['spec'];
  freeCpuMillis: number;
  freeMemBytes: number;
  gpuUsedMilli: Uint16Array;
  fragmentMilli: number;
}

/**
 * The fragmentation of a node as it stands is the same for every job scored against it until the node or
 * the mix changes, and most nodes change rarely: remember it per node, checked against what it depends on
 * (a cache only: the score is the same with or without it).
 */
const memos = new WeakMap<NodeRuntime, Memo>();

function fragmentNow(node: NodeRuntime, gpus: number, mix: readonly DemandShape[]): number {
  const used = node.gpuUsedMilli;
  const memo = memos.get(node);
  if (memo && memo.mix === mix && memo.spec === node.spec && memo.freeCpuMillis === node.freeCpuMillis && memo.freeMemBytes === node.freeMemBytes && sameUse(memo.gpuUsedMilli, used)) return memo.fragmentMilli;
  const fragmentMilli = expectedFragmentMilli(freeGpuMilli(node, before), gpus, node.freeCpuMillis, node.freeMemBytes, node.spec.gpuModel, mix);
  if (memo && memo.gpuUsedMilli.length === used.length) {
    memo.mix = mix;
    memo.spec = node.spec;
    memo.freeCpuMillis = node.freeCpuMillis;
    memo.freeMemBytes = node.freeMemBytes;
    memo.gpuUsedMilli.set(used);
    memo.fragmentMilli = fragmentMilli;
  } else {
    memos.set(node, { mix, spec: node.spec, freeCpuMillis: node.freeCpuMillis, freeMemBytes: node.freeMemBytes, gpuUsedMilli: Uint16Array.from(used), fragmentMilli });
  }
  return fragmentMilli;
}

function sameUse(a: Uint16Array, b: Uint16Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Fragmentation Gradient Descent (Weng et al., USENIX ATC'23): prefers the node whose GPU fragmentation,
 * measured against the pool's recent mix of GPU demands (PoolPolicy.gpuDemand), grows least when the task
 * lands there, or shrinks most. Packing heuristics fill GPUs without asking whether what is left can still
 * be used; this asks exactly that, for the requests that are likely to come. Nodes without GPUs score 50.
 */
export const fragmentationGradient: ScorePlugin = {
  name: 'FragmentationGradient',
  score(job, node) {
    const gpus = node.gpuUsedMilli.length;
    if (gpus === 0) return fractionScore(0.5);
    if (before.length < gpus) {
      before = new Int32Array(gpus);
      after = new Int32Array(gpus);
    }
    const mix = job.policy.gpuDemand?.typical() ?? FALLBACK_DEMAND;
    const task = job.task;
    const cpuAfter = task.exclusive ? 0 : node.freeCpuMillis - task.cpuMillis;
    const memAfter = task.exclusive ? 0 : node.freeMemBytes - task.memBytes;
    const growthMilli = expectedFragmentMilli(freeGpuMilliAfter(node, task, after), gpus, cpuAfter, memAfter, node.spec.gpuModel, mix) - fragmentNow(node, gpus, mix);
    return fractionScore(1 / (1 + Math.exp(growthMilli / GROWTH_SCALE_MILLI)));
  },
};
