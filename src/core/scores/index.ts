import type { ScorePlugin } from '../framework';
import { greenShare } from './green-share';
import { leastAllocated } from './least-allocated';
import { mostAllocated } from './most-allocated';
import { packGpus } from './pack-gpus';
import { powerHeadroom } from './power-headroom';
import { preferredAffinity } from './preferred-affinity';
import { taintPreference } from './taint-preference';

export { greenShare, leastAllocated, mostAllocated, packGpus, powerHeadroom, preferredAffinity, taintPreference };

/** Every score plugin by name; a policy refers to them by these names. */
export const SCORE_PLUGINS: Readonly<Record<string, ScorePlugin>> = Object.fromEntries(
  [leastAllocated, mostAllocated, packGpus, greenShare, powerHeadroom, preferredAffinity, taintPreference].map((p) => [p.name, p]),
);
