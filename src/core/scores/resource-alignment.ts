import { GPU_MILLI_PER_GPU } from '../../protocol';
import { fractionScore, type ScorePlugin } from '../framework';

const WHOLE = GPU_MILLI_PER_GPU;

/**
 * Prefers the node whose free resources are in the same proportions as the task's request (the alignment
 * score of Tetris, Grandl et al., SIGCOMM'14): the cosine between the task's GPUs, cores and memory and the
 * node's free GPUs, cores and memory, each as a share of the node's allocatable. A CPU-hungry GPU task goes
 * where cores are left over rather than where every core is needed by the GPUs beside it, so no resource
 * of a server runs out while the others lie idle. Dimensions the node lacks (GPUs) are left out.
 */
export const resourceAlignment: ScorePlugin = {
  name: 'ResourceAlignment',
  score(job, node) {
    const alloc = node.allocatable;
    const task = job.task;
    let dot = 0;
    let taskNorm = 0;
    let freeNorm = 0;
    if (alloc.gpus > 0) {
      const capacityMilli = alloc.gpus * WHOLE;
      const t = (task.gpus * WHOLE + task.gpuMilli) / capacityMilli;
      const f = (capacityMilli - node.usedGpuMilli()) / capacityMilli;
      dot += t * f;
      taskNorm += t * t;
      freeNorm += f * f;
    }
    if (alloc.cpuMillis > 0) {
      const t = task.cpuMillis / alloc.cpuMillis;
      const f = node.freeCpuMillis / alloc.cpuMillis;
      dot += t * f;
      taskNorm += t * t;
      freeNorm += f * f;
    }
    if (alloc.memBytes > 0) {
      const t = task.memBytes / alloc.memBytes;
      const f = node.freeMemBytes / alloc.memBytes;
      dot += t * f;
      taskNorm += t * t;
      freeNorm += f * f;
    }
    return taskNorm > 0 && freeNorm > 0 ? fractionScore(dot / Math.sqrt(taskNorm * freeNorm)) : 0;
  },
};
