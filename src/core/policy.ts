import { POOLS } from '../protocol';
import type { Policy, PoolPolicy } from './framework';
import { SCORE_PLUGINS } from './scores';

/**
 * The default placement policy:
 * - general (CPU): spread over the emptiest nodes, keeping headroom for bursts;
 * - intelligent (GPU): pack GPUs so whole servers stay free for multi-GPU training;
 * - super (HPC): whole nodes, packed so free racks stay whole for large gangs.
 * Green share counts a little everywhere; the green policy (later) raises its weight.
 */
export const DEFAULT_POLICY: Policy = {
  general: {
    scoreWeights: { LeastAllocated: 2, GreenShare: 1, PowerHeadroom: 1, PreferredAffinity: 1, TaintPreference: 1 },
    candidateOrder: 'spread',
    nodesToScore: 8,
    gangSearchNodes: 32,
    exclusive: false,
    backfill: false,
  },
  intelligent: {
    scoreWeights: { PackGpus: 3, MostAllocated: 1, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 },
    candidateOrder: 'pack',
    nodesToScore: 8,
    gangSearchNodes: 64,
    exclusive: false,
    backfill: false,
  },
  super: {
    scoreWeights: { GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 },
    candidateOrder: 'pack',
    nodesToScore: 8,
    gangSearchNodes: 128,
    exclusive: true,
    backfill: true,
  },
};

/** A copy of `base` with some pools' settings replaced. */
export function withPoolPolicy(base: Policy, overrides: Partial<Record<keyof Policy, Partial<PoolPolicy>>>): Policy {
  const out = {} as Record<keyof Policy, PoolPolicy>;
  for (const pool of POOLS) out[pool] = { ...base[pool], ...overrides[pool] };
  return out;
}

/** Throws when a policy names a score plugin that does not exist or has a nonsensical setting. */
export function assertValidPolicy(policy: Policy): void {
  for (const pool of POOLS) {
    const p = policy[pool];
    for (const [name, weight] of Object.entries(p.scoreWeights)) {
      if (!SCORE_PLUGINS[name]) throw new Error(`policy for ${pool}: unknown score plugin ${name}`);
      if (!Number.isInteger(weight) || weight < 0) throw new Error(`policy for ${pool}: weight of ${name} must be a non-negative integer`);
    }
    if (!Number.isInteger(p.nodesToScore) || p.nodesToScore < 1) throw new Error(`policy for ${pool}: nodesToScore must be a positive integer`);
    if (!(p.gangSearchNodes >= 1)) throw new Error(`policy for ${pool}: gangSearchNodes must be at least 1`);
  }
}
