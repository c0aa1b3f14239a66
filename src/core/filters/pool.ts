import { pass, reject, type FilterPlugin } from '../framework';

/** A job runs only in its own pool. */
export const poolMatch: FilterPlugin = {
  name: 'Pool',
  scope: 'static',
  filter(job, node) {
    return node.spec.pool === job.job.pool ? pass() : reject('pool-mismatch');
  },
};
