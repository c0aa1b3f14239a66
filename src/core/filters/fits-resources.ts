import type { FilterPlugin } from '../framework';

/** The node has the free GPUs (or GPU share), CPU, memory and extended resources for one more task now. */
export const fitsResources: FilterPlugin = {
  name: 'FitsResources',
  scope: 'dynamic',
  filter(job, node) {
    return node.shortfall(job.task);
  },
};
