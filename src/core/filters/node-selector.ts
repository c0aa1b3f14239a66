import { pass, reject, type FilterPlugin } from '../framework';

/** Every key=value of the job's nodeSelector must be among the node's labels. */
export const nodeSelector: FilterPlugin = {
  name: 'NodeSelector',
  scope: 'static',
  filter(job, node) {
    const labels = node.matchLabels;
    for (const [key, value] of Object.entries(job.job.constraints.nodeSelector)) {
      if (labels[key] !== value) return reject('node-selector-mismatch');
    }
    return pass();
  },
};
