import { fractionScore, type ScorePlugin } from '../framework';

/** Spreads work: the more CPU and memory a node has left after the task, the higher it scores. */
export const leastAllocated: ScorePlugin = {
  name: 'LeastAllocated',
  score(job, node) {
    const alloc = node.allocatable;
    const cpuLeft = alloc.cpuMillis > 0 ? (node.freeCpuMillis - job.task.cpuMillis) / alloc.cpuMillis : 0;
    const memLeft = alloc.memBytes > 0 ? (node.freeMemBytes - job.task.memBytes) / alloc.memBytes : 0;
    return fractionScore((cpuLeft + memLeft) / 2);
  },
};
