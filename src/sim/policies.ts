import { DEFAULT_AGING_MS, DEFAULT_BACKFILL_DEPTH, DEFAULT_MAX_ATTEMPTS, DEFAULT_POLICY, DEFAULT_PREEMPTION_MAX_PER_HOUR, withPoolPolicy, type Policy, type PoolPolicy } from '../core';
import type { DeferralShares } from '../green';
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
  /** With shiftInTime: the share of a pool deferred jobs may book in any one step, for every pool or per pool (default 0.2 and none in the GPU pool, as the service's QY_GREEN_DEFERRAL_SHARE). */
  deferralShare?: number | DeferralShares;
  /** Waiting this long counts as a whole dominant share (priority-fair order). */
  agingMs: number;
  /** Higher priority classes stop lower ones to fit, at most this often per job and hour (the service's storm guard). */
  preemption?: { maxPerHour: number };
  /** Runs a job may lose to node failures before it fails for good (the service's QY_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** EASY look-ahead: jobs a backfilling pool tries at most per pass (Slurm's bf_max_job_test). */
  backfillDepth?: number;
}

/** What every policy shares unless it says otherwise: the service's defaults. */
const COMMON = { agingMs: DEFAULT_AGING_MS, maxAttempts: DEFAULT_MAX_ATTEMPTS, backfillDepth: DEFAULT_BACKFILL_DEPTH };
const SERVICE_PREEMPTION = { maxPerHour: DEFAULT_PREEMPTION_MAX_PER_HOUR };
/** What the policies "as priority-fair" share: the service's order and preemption. */
const PRIORITY_FAIR = { ...COMMON, order: 'priority-fair' as const, strict: false, preemption: SERVICE_PREEMPTION };
/**
 * The green evaluation's policies: priority-fair without preemption. A preempted job runs again from its
 * start, and in a loaded day that waste (up to a fifth of the jobs' energy on eval:green's workload) swamps,
 * and randomly flips, what placing and shifting work saves; the comparison is of where and when work runs.
 */
const GREEN_BASE = { ...PRIORITY_FAIR, preemption: undefined };
const everyPool = (settings: Partial<PoolPolicy>): Partial<Record<Pool, Partial<PoolPolicy>>> => Object.fromEntries(POOLS.map((p) => [p, settings]));

/**
 * The policies of the green evaluation: the default placement with the GreenShare score at `weight`, and
 * EASY backfilling in every pool, so a large job released from deferral gets a reservation instead of
 * waiting behind smaller ones until its deadline has passed.
 */
function withGreenWeight(weight: number): Policy {
  return withPoolPolicy(DEFAULT_POLICY, Object.fromEntries(POOLS.map((p) => [p, { scoreWeights: { ...DEFAULT_POLICY[p].scoreWeights, GreenShare: weight }, backfill: true }])));
}

/** The general pool of the packing policies. */
const PACKED_GENERAL: Partial<PoolPolicy> = { candidateOrder: 'pack', scoreWeights: { MostAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } };

/** The named policies `npm run sim -- --policy a,b` compares. */
export const SIM_POLICIES: Readonly<Record<string, { describe: string; make(): SimPolicy }>> = {
  fifo: {
    describe: 'first come, first served: nothing starts ahead of the oldest job that does not fit',
    make: () => ({ ...COMMON, name: 'fifo', order: 'fifo', strict: true, placement: withPoolPolicy(DEFAULT_POLICY, everyPool({ backfill: false })) }),
  },
  'easy-backfill': {
    describe: 'submit order with EASY backfilling in every pool: later jobs start early only if they do not delay the oldest waiting job',
    make: () => ({ ...COMMON, name: 'easy-backfill', order: 'fifo', strict: false, placement: withPoolPolicy(DEFAULT_POLICY, everyPool({ backfill: true })) }),
  },
  'priority-fair': {
    describe: "the service's defaults: priority classes, weighted fair share with aging, preemption with the storm guard, EASY backfill in super",
    make: () => ({ ...PRIORITY_FAIR, name: 'priority-fair', placement: DEFAULT_POLICY }),
  },
  binpack: {
    describe: 'priority-fair, packing every pool onto the fullest nodes',
    make: () => ({
      ...PRIORITY_FAIR,
      name: 'binpack',
      placement: withPoolPolicy(DEFAULT_POLICY, {
        general: PACKED_GENERAL,
        intelligent: { candidateOrder: 'pack', scoreWeights: { PackGpus: 3, MostAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
      }),
    }),
  },
  fgd: {
    describe: "binpack, but GPU work goes where GPU fragmentation against the recent mix of GPU demands grows least (FGD, ATC'23) and free cores and memory match the task",
    make: () => ({
      ...PRIORITY_FAIR,
      name: 'fgd',
      placement: withPoolPolicy(DEFAULT_POLICY, {
        general: PACKED_GENERAL,
        intelligent: { candidateOrder: 'pack', nodesToScore: 64, scoreWeights: { FragmentationGradient: 12, ResourceAlignment: 4, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
      }),
    }),
  },
  spread: {
    describe: 'priority-fair, spreading every pool over the emptiest nodes',
    make: () => ({
      ...PRIORITY_FAIR,
      name: 'spread',
      placement: withPoolPolicy(DEFAULT_POLICY, {
        general: { candidateOrder: 'spread', scoreWeights: { LeastAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 }, deferrable: undefined },
        intelligent: { candidateOrder: 'spread', scoreWeights: { LeastAllocated: 2, GreenShare: 1, PreferredAffinity: 1, TaintPreference: 1 } },
      }),
    }),
  },
  'green-blind': {
    describe: 'priority-fair without preemption, EASY backfill everywhere and no regard for green power: the baseline of the green evaluation',
    make: () => ({ ...GREEN_BASE, name: 'green-blind', placement: withGreenWeight(0) }),
  },
  'green-spatial': {
    describe: 'priority-fair, green share weighing 6× in scoring: work goes where the power is greener',
    make: () => ({ ...GREEN_BASE, name: 'green-spatial', placement: withGreenWeight(6) }),
  },
  'green-aware': {
    describe: 'green-spatial, and deferrable jobs start at the time in their window with the lowest forecast carbon intensity',
    make: () => ({ ...GREEN_BASE, name: 'green-aware', placement: withGreenWeight(6), shiftInTime: true }),
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
