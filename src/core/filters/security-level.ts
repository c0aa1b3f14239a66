import { dataClassRank } from '../../protocol';
import { pass, reject, type FilterPlugin } from '../framework';

/** A job runs only on a node certified for its data classification or a higher one. */
export const securityLevel: FilterPlugin = {
  name: 'SecurityLevel',
  scope: 'static',
  filter(job, node) {
    return dataClassRank(node.spec.securityLevel) >= dataClassRank(job.job.dataClass) ? pass() : reject('security-level-too-low');
  },
};
