import { DEFAULT_POLICY, withPoolPolicy, type Policy, type PoolPolicy } from '../core';
import { POOLS, type Pool } from '../protocol';

/** How a simulated scheduler orders, admits and places jobs; the placement itself is src/core's. */
export interface SimPolicy {
  name: string;
  /** `fifo`: submit order. `priority-fair`: priority class, then weighted dominant share with aging (as the service). */
  order: 'fifo' | 'priority-fair';
  /** Nothing starts ahead of the first job that does not fit (strict first-come first-served). */
  strict: boolean;
  /** The core placement policy; pools with `backfill` use EASY backfilling. */
  placement: Policy;
  /** Temporal shifting: deferrable jobs start at the time in their window with the lowest forecast carbon intensity. */
  shiftInTime?: boolean;
  /** With shiftInTime: the share of a pool deferred jobs may book in any one step (default 0.3). */
  deferralShare?: number;
  /** Waiting this long counts as a whole dominant share (priority-fair order). */
  agingMs: number;
}

const AGING_MS = 600_000;
const everyPool = (settings: Partial<PoolPolicy>): Partial<Record<Pool, Partial<PoolPolicy>>> => Object.fromEntries(POOLS.map((p) => [p, settings]));

/**
 * The policies of the green evaluation: the default placement with the GreenShare score at `weight`, and
 * EASY backfilling in every pool, so a large job released from deferral gets a reservation instead of
 * waiting behind smaller ones until its deadline has passed.
 */
function withGreenWeight(weight: number): Policy {
  return withPoolPolicy(DEFAULT_POLICY, Object.fromEntries(POOLS.map((p) => [p, { scoreWeights: { ...DEFAULT_POLICY[p].scoreWeights, GreenShare: weight }, backfill: true }])));
}

/** The named policies `npm run sim -- --policy a,b` compares. */
export const SIM_POLICIES: Readonly<Record<string, { describe: string; make(): SimPolicy }>> = {
  fifo: {
    describe: 'first come, first served: nothing starts ahead of the oldest job that does not fit',
    make: () => ({ name: 'fifo', order: 'fifo', strict: true, placement: withPoolPolicy(DEFAULT_POLICY, everyPool({ backfill: false })), agingMs: AGING_MS }),
  },
  'easy-backfill': {
    describe: 'submit order with EASY backfilling in every pool: later jobs start early only if they do not delay the oldest waiting job',
    make: () => ({ name: 'easy-backfill', order: 'fifo', strict: false, placement: withPoolPolicy(DEFAULT_POLICY, everyPool({ backfill: true })), agingMs: AGING_MS }),
  },
  'priority-fair': {
    describe: "the service's defaults: priority classes, weighted fair share with aging, EASY backfill in super",
    make: () => ({ name: 'priority-fair', order: 'priority-fair', strict: false, placement: DEFAULT_POLICY, agingMs: AGING_MS }),
  },
  binpack: {
    describe: 'priority-fair, packing every pool onto the fullest nodes',
    make: () => ({
      name: 'binpack',
      order: 'priority-fair',
      strict: false,
      placement: withPoolPolicy(DEFAULT_POLICY, {
        general: { candidateOrder: 'pack', scoreWeights: { MostAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
        intelligent: { candidateOrder: 'pack', scoreWeights: { PackGpus: 3, MostAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
      }),
      agingMs: AGING_MS,
    }),
  },
  spread: {
    describe: 'priority-fair, spreading every pool over the emptiest nodes',
    make: () => ({
      name: 'spread',
      order: 'priority-fair',
      strict: false,
      placement: withPoolPolicy(DEFAULT_POLICY, {
        general: { candidateOrder: 'spread', scoreWeights: { LeastAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
        intelligent: { candidateOrder: 'spread', scoreWeights: { LeastAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
      }),
      agingMs: AGING_MS,
    }),
  },
  'green-blind': {
    describe: 'priority-fair with EASY backfill everywhere and no regard for green power: the baseline of the green evaluation',
    make: () => ({ name: 'green-blind', order: 'priority-fair', strict: false, placement: withGreenWeight(0), agingMs: AGING_MS }),
  },
  'green-spatial': {
    describe: 'priority-fair, green share weighing 6× in scoring: work goes where the power is greener',
    make: () => ({ name: 'green-spatial', order: 'priority-fair', strict: false, placement: withGreenWeight(6), agingMs: AGING_MS }),
  },
  'green-aware': {
    describe: 'green-spatial, and deferrable jobs start at the time in their window with the lowest forecast carbon intensity',
    make: () => ({ name: 'green-aware', order: 'priority-fair', strict: false, placement: withGreenWeight(6), shiftInTime: true, agingMs: AGING_MS }),
  },
};

/** The policies named in a comma-separated list; unknown names throw with the list of known ones. */
export function policiesNamed(list: string): SimPolicy[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((name) => {
      const p = SIM_POLICIES[name];
      if (!p) throw new Error(`unknown policy ${name}; known: ${Object.keys(SIM_POLICIES).join(', ')}`);
      return p.make();
    });
}

/**
 * A policy for a processor-level trace (SWF): tasks of `super` jobs share nodes, packed onto as few as fit,
 * instead of each taking a whole node.
 */
export function processorLevel(policy: SimPolicy): SimPolicy {
  return { ...policy, placement: withPoolPolicy(policy.placement, { super: { exclusive: false, candidateOrder: 'pack' } }) };
}
