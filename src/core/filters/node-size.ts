import { pass, reject, type FilterPlugin } from '../framework';

/** One task must fit the node's allocatable when the node is empty; otherwise it never will. */
export const nodeSize: FilterPlugin = {
  name: 'NodeSize',
  scope: 'static',
  filter(job, node) {
    const task = job.task;
    const alloc = node.allocatable;
    if (task.gpus > alloc.gpus) return reject('node-too-small');
    if (task.cpuMillis > alloc.cpuMillis || task.memBytes > alloc.memBytes) return reject('node-too-small');
    for (const [name, amount] of task.extended) if (amount > (alloc.extended[name] ?? 0)) return reject('node-too-small');
    return pass();
  },
};
