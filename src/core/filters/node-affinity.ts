import { pass, reject, type FilterPlugin } from '../framework';
import { matchesRequirement } from '../labels';

/** Required node affinity (all requirements hold) and anti-affinity (no requirement holds). */
export const nodeAffinity: FilterPlugin = {
  name: 'NodeAffinity',
  scope: 'static',
  filter(job, node) {
    const { affinity, antiAffinity } = job.job.constraints;
    const labels = node.matchLabels;
    for (const req of affinity) if (!matchesRequirement(labels, req)) return reject('affinity-mismatch');
    for (const req of antiAffinity) if (matchesRequirement(labels, req)) return reject('anti-affinity-match');
    return pass();
  },
};
