import { fractionScore, type ScorePlugin } from '../framework';

/** Packs work: the fuller a node's CPU and memory after the task, the higher it scores. */
export const mostAllocated: ScorePlugin = {
  name: 'MostAllocated',
  score(job, node) {
    const alloc = node.allocatable;
    const cpuUsed = alloc.cpuMillis > 0 ? (node.requestedCpuMillis + job.task.cpuMillis) / alloc.cpuMillis : 1;
    const memUsed = alloc.memBytes > 0 ? (node.requestedMemBytes + job.task.memBytes) / alloc.memBytes : 1;
    return fractionScore((cpuUsed + memUsed) / 2);
  },
};
