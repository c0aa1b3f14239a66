/**
 * The placement core: pure, deterministic scheduling of jobs onto the general, intelligent and super pools.
 * No I/O, no clock, no randomness: time and randomness come in as arguments.
 */
export { ClusterState, type PoolSummary, type TenantUsage } from './cluster';
export { jobFromSpec, type JobIdentity, type Placement, type PlacementFailure, type PlacementResult, type ReasonCode, type ReasonCounts, type SchedJob, type TaskPlacement } from './model';
export { MAX_NODE_SCORE, fractionScore, pass, reject, type FilterPlugin, type FilterVerdict, type Policy, type PoolPolicy, type PreparedJob, type ScorePlugin } from './framework';
export { DEFAULT_POLICY, assertValidPolicy, withPoolPolicy } from './policy';
export { prepareJob, type PreparedJobWithCache } from './prepare';
export { placeJob, neverFits } from './placement';
export { placeJobNaive } from './naive';
export { formatFailure } from './reasons';
export { JobQueue, byPriorityThenSubmitTime, type JobComparator } from './queue';
export { NodeRuntime, type PreparedTask } from './node-runtime';
export { OrdinalSet } from './ordinal-set';
export { FILTERS, STATIC_FILTERS } from './filters';
export { SCORE_PLUGINS } from './scores';
export { matchesRequirement, ZONE_LABEL } from './labels';
export { PendingQueue, shapeKey, type AttemptOutcome, type CycleReport, type WaitReason } from './pending';
export { FairShare, type FairShareSettings } from './fair-share';
export { findPreemption, type PreemptionPlan, type VictimInfo } from './preemption';
export { backfillAllowed, byEndTime, easyReservation, type ExpectedEnd, type Reservation } from './backfill';
export { EasyShadow } from './easy-shadow';
export { SortedEnds } from './sorted-ends';
