import { GPU_MILLI_PER_GPU } from '../protocol';
import type { DemandShape } from './gpu-demand';
import type { NodeRuntime, PreparedTask } from './node-runtime';

// A local copy: read through the module namespace, the constant costs a getter call in the hot loops below.
const WHOLE = GPU_MILLI_PER_GPU;

/**
 * GPU fragmentation as FGD measures it (Weng et al., "Beware of Fragmentation", USENIX ATC'23, §3):
 * for one typical request m, the free GPU capacity of a node that m cannot use is
 * - all of it, when m cannot run there at all (too few suitable GPUs, too little CPU or memory, another
 *   GPU model);
 * - otherwise the free shares of the GPUs too full for m (a GPU with 300 free milli-GPUs is a fragment
 *   for a request of 500 per GPU, and for a whole-GPU request).
 * A node's fragmentation is the expectation of that over the demand mix, in milli-GPUs.
 *
 * The paper leaves memory out; here it counts, because the filters do: on the openb trace a whole-GPU
 * task asks for about the memory of a GPU's share of its server.
 * `freeMilli` holds the free milli-GPUs of each GPU in its first `gpuCount` entries.
 */
export function expectedFragmentMilli(freeMilli: ArrayLike<number>, gpuCount: number, freeCpuMillis: number, freeMemBytes: number, gpuModel: string | undefined, mix: readonly DemandShape[]): number {
  let totalFree = 0;
  let wholeFree = 0;
  for (let i = 0; i < gpuCount; i++) {
    const f = freeMilli[i];
    totalFree += f;
    if (f === WHOLE) wholeFree++;
  }
  if (totalFree === 0) return 0;
  let fragment = 0;
  for (const m of mix) {
    if (m.gpuModels !== null && (gpuModel === undefined || !m.gpuModels.has(gpuModel))) {
      fragment += m.weight * totalFree;
      continue;
    }
    if (freeCpuMillis < m.cpuMillis || freeMemBytes < m.memBytes) {
      fragment += m.weight * totalFree;
      continue;
    }
    if (m.milliPerGpu === WHOLE) {
      // Whole GPUs: every partly used GPU is a fragment for it.
      fragment += m.weight * (wholeFree >= m.gpuCount ? totalFree - wholeFree * WHOLE : totalFree);
      continue;
    }
    let suitable = 0;
    let tooFull = 0;
    for (let i = 0; i < gpuCount; i++) {
      const f = freeMilli[i];
      if (f >= m.milliPerGpu) suitable++;
      else tooFull += f;
    }
    fragment += m.weight * (suitable >= m.gpuCount ? tooFull : totalFree);
  }
  return fragment;
}

/** Free milli-GPUs per GPU of a node now, into the first entries of `out` (which must hold the node's GPUs). */
export function freeGpuMilli(node: NodeRuntime, out: Int32Array): Int32Array {
  const used = node.gpuUsedMilli;
  for (let i = 0; i < used.length; i++) out[i] = WHOLE - used[i];
  return out;
}

/**
 * Free milli-GPUs per GPU once one task is placed, into `out`, choosing GPUs as NodeRuntime.planTasks
 * does (whole GPUs: any entirely free ones; a share: the fullest GPU that holds it), so the score judges
 * the placement that will be made. An exclusive task takes everything. Assumes the task fits.
 */
export function freeGpuMilliAfter(node: NodeRuntime, task: PreparedTask, out: Int32Array): Int32Array {
  freeGpuMilli(node, out);
  const count = node.gpuUsedMilli.length;
  if (task.exclusive) {
    out.fill(0, 0, count);
  } else if (task.gpus > 0) {
    for (let i = 0, left = task.gpus; i < count && left > 0; i++) {
      if (out[i] === WHOLE) {
        out[i] = 0;
        left--;
      }
    }
  } else if (task.gpuMilli > 0) {
    let best = -1;
    for (let i = 0; i < count; i++) if (out[i] >= task.gpuMilli && (best < 0 || out[i] < out[best])) best = i;
    if (best >= 0) out[best] -= task.gpuMilli;
  }
  return out;
}

/**
 * Fragmentation of a set of nodes against a demand mix, for reports: the expected fragmented milli-GPUs,
 * the free milli-GPUs and the GPU capacity, summed over the nodes.
 */
export function gpuFragmentationOf(nodes: Iterable<NodeRuntime>, mix: readonly DemandShape[]): { fragmentMilli: number; freeMilli: number; capacityMilli: number } {
  let scratch = new Int32Array(16);
  let fragmentMilli = 0;
  let freeMilli = 0;
  let capacityMilli = 0;
  for (const node of nodes) {
    const gpus = node.gpuUsedMilli.length;
    if (gpus === 0) continue;
    if (scratch.length < gpus) scratch = new Int32Array(gpus);
    const free = freeGpuMilli(node, scratch);
    capacityMilli += gpus * WHOLE;
    for (let i = 0; i < gpus; i++) freeMilli += free[i];
    fragmentMilli += expectedFragmentMilli(free, gpus, node.freeCpuMillis, node.freeMemBytes, node.spec.gpuModel, mix);
  }
  return { fragmentMilli, freeMilli, capacityMilli };
}
