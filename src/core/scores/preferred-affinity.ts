import { fractionScore, type ScorePlugin } from '../framework';
import { matchesRequirement } from '../labels';

/** Soft node affinity: the weights of the preferred terms a node satisfies, out of all of them. */
export const preferredAffinity: ScorePlugin = {
  name: 'PreferredAffinity',
  score(job, node) {
    const terms = job.job.constraints.preferred;
    if (terms.length === 0) return 0;
    let total = 0;
    let matched = 0;
    for (const term of terms) {
      total += term.weight;
      if (matchesRequirement(node.matchLabels, term.requirement)) matched += term.weight;
    }
    return fractionScore(matched / total);
  },
};
