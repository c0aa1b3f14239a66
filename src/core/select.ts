import type { PreparedJob } from './framework';
import type { NodeRuntime } from './node-runtime';

/** The weighted sum of the pool's score plugins for one node. */
export function scoreNode(p: PreparedJob, node: NodeRuntime): number {
  let total = 0;
  for (const { plugin, weight } of p.scorers) total += weight * plugin.score(p, node);
  return total;
}

/** The highest-scoring node; equal scores go to the smallest node id, so the choice is stable. */
export function selectBest(p: PreparedJob, nodes: readonly NodeRuntime[]): NodeRuntime {
  let best = nodes[0];
  let bestScore = scoreNode(p, best);
  for (let i = 1; i < nodes.length; i++) {
    const node = nodes[i];
    const score = scoreNode(p, node);
    if (score > bestScore || (score === bestScore && node.id < best.id)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}
