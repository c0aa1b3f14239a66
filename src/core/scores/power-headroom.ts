import { MAX_NODE_SCORE, fractionScore, type ScorePlugin } from '../framework';

/**
 * Prefers nodes drawing less of their rated power, which keeps hot spots and power peaks down.
 * Nodes that do not declare a rated power get the middle score.
 */
export const powerHeadroom: ScorePlugin = {
  name: 'PowerHeadroom',
  score(_job, node) {
    const rated = node.spec.ratedPowerWatts ?? 0;
    if (rated <= 0) return MAX_NODE_SCORE / 2;
    return fractionScore(1 - node.powerWatts / rated);
  },
};
