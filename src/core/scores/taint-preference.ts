import { MAX_NODE_SCORE, type ScorePlugin } from '../framework';
import { isTolerated } from '../filters/taint-toleration';

/** PreferNoSchedule taints: a node with one the job does not tolerate scores 0, others full marks. */
export const taintPreference: ScorePlugin = {
  name: 'TaintPreference',
  score(job, node) {
    for (const taint of node.spec.taints) {
      if (taint.effect === 'PreferNoSchedule' && !isTolerated(job.job.constraints.tolerations, taint)) return 0;
    }
    return MAX_NODE_SCORE;
  },
};
