import type { ClusterState } from '../core';
import { GPU_MILLI_PER_GPU } from '../protocol';

/** A GPU request: whole GPUs, or a share of one GPU in milli-GPUs. */
export interface GpuRequest {
  gpus: number;
  gpuMilli: number;
}

/**
 * GPU fragmentation against the work that wants GPUs (after FGD, Weng et al., ATC'23): free GPU capacity
 * on servers where none of `demand` fits any more, as a share of all GPU capacity of the intelligent pool;
 * and the share of GPU servers that are partly used. With no demand given, a request for one whole GPU.
 */
export function gpuFragmentation(cluster: ClusterState, demand: readonly GpuRequest[]): { gpuFragmentation: number; partlyUsedGpuServerShare: number } {
  const nodes = cluster.nodesOf('intelligent');
  const wanted = demand.length > 0 ? demand : [{ gpus: 1, gpuMilli: 0 }];
  let total = 0;
  let stranded = 0;
  let partly = 0;
  for (const node of nodes) {
    const gpus = node.allocatable.gpus;
    total += gpus * GPU_MILLI_PER_GPU;
    const used = node.usedGpuMilli();
    if (used > 0 && used < gpus * GPU_MILLI_PER_GPU) partly++;
    const whole = node.wholeFreeGpus();
    const share = node.maxFreeGpuMilli();
    const usable = wanted.some((d) => (d.gpus > 0 ? whole >= d.gpus : share >= d.gpuMilli));
    if (!usable) stranded += gpus * GPU_MILLI_PER_GPU - used;
  }
  return { gpuFragmentation: stranded / Math.max(1, total), partlyUsedGpuServerShare: partly / Math.max(1, nodes.length) };
}
