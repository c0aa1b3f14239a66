import { fractionScore, type ScorePlugin } from '../framework';

/** Prefers nodes running on a larger share of green electricity, as their agents last reported. */
export const greenShare: ScorePlugin = {
  name: 'GreenShare',
  score(_job, node) {
    return fractionScore(node.greenShare);
  },
};
