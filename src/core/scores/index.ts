import type { ScorePlugin } from '../framework';
import { fragmentationGradient } from './fgd';
import { greenShare } from './green-share';
import { leastAllocated } from './least-allocated';
import { mostAllocated } from './most-allocated';
import { packGpus } from './pack-gpus';
import { powerHeadroom } from './power-headroom';
import { preferredAffinity } from './preferred-affinity';
import { resourceAlignment } from './resource-alignment';
import { taintPreference } from './taint-preference';

export { fragmentationGradient, greenShare, leastAllocated, mostAllocated, packGpus, powerHeadroom, preferredAffinity, resourceAlignment, taintPreference };

/** Every score plugin by name; a policy refers to them by these names. */
export const SCORE_PLUGINS: Readonly<Record<string, ScorePlugin>> = Object.fromEntries(
  [leastAllocated, mostAllocated, packGpus, fragmentationGradient, resourceAlignment, greenShare, powerHeadroom, preferredAffinity, taintPreference].map((p) => [p.name, p]),
);
