import { GPU_MILLI_PER_GPU } from '../../protocol';
import { fractionScore, type ScorePlugin } from '../framework';

/**
 * Packs GPU work onto servers already in use, so whole 8-GPU servers stay free for large training jobs:
 * the score is the share of the node's GPU capacity in use after the task. Nodes without GPUs score 0.
 */
export const packGpus: ScorePlugin = {
  name: 'PackGpus',
  score(job, node) {
    const gpus = node.allocatable.gpus;
    if (gpus === 0) return 0;
    const taskMilli = job.task.gpus * GPU_MILLI_PER_GPU + job.task.gpuMilli;
    return fractionScore((node.usedGpuMilli() + taskMilli) / (gpus * GPU_MILLI_PER_GPU));
  },
};
