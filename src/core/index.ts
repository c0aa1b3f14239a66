/**
 * The placement core: pure, deterministic scheduling of jobs onto the general, intelligent and super pools.
 * No I/O, no clock, no randomness: time and randomness come in as arguments.
 */
export { ClusterState, type PoolSummary, type TenantUsage } from './cluster';
export { jobFromSpec, type JobIdentity, type Placement, type PlacementFailure, type PlacementResult, type ReasonCode, type ReasonCounts, type SchedJob, type TaskPlacement } from './model';
export { MAX_NODE_SCORE, fractionScore, pass, reject, type FilterPlugin, type FilterVerdict, type Policy, type PoolPolicy, type PreparedJob, type ScorePlugin } from './framework';
export { DEFAULT_POLICY, assertValidPolicy, withPoolPolicy } from './policy';
export { prepareJob, type PreparedJobWithCache } from './prepare';
export { placeJob, jobFits, neverFits } from './placement';
export { placeJobNaive } from './naive';
export { formatFailure } from './reasons';
export { JobQueue, byPriorityThenSubmitTime, type JobComparator } from './queue';
export { NodeRuntime, type PreparedTask } from './node-runtime';
export { OrdinalSet } from './ordinal-set';
export { FILTERS, STATIC_FILTERS } from './filters';
export { SCORE_PLUGINS } from './scores';
export { matchesRequirement, ZONE_LABEL } from './labels';
export { ESCALATED_PRIORITY, PendingQueue, shapeKey, type AttemptOutcome, type CycleReport, type Hold, type WaitReason } from './pending';
export { FairShare, type FairShareSettings } from './fair-share';
export { findPreemption, type PreemptionPlan, type VictimInfo } from './preemption';
export { backfillAllowed, byEndTime, easyReservation, type BackfillProfile, type ExpectedEnd, type Reservation } from './backfill';
export { EasyShadow } from './easy-shadow';
export { SortedEnds } from './sorted-ends';
export { MinHeap } from './min-heap';
export { SchedulingPipeline, type CycleOptions, type PoolReservation } from './cycle/pipeline';
export type { CyclePorts, PipelineSettings, PowerPort, PreemptionPort, WaitStage } from './cycle/ports';
export { quotaBlock, type QuotaLimits } from './cycle/quota';
export { DEADLINE_SAFETY_MS, ESCALATION_LEAD_MS, MAX_RERUNS, RERUN_RISK, escalationAtOf, latestStartOf, latestStartOfJob, rerunsFor, safetyMarginMs, type Deferral } from './deadline';
export { DEFAULT_AGING_MS, DEFAULT_BACKFILL_DEPTH, DEFAULT_MAX_ATTEMPTS, DEFAULT_PREEMPTION_MAX_PER_HOUR } from './cycle/defaults';
export { type PlaceOptions } from './placement';
export { FALLBACK_DEMAND, GpuDemandMix, gpuRequestOf, observeGpuDemand, withGpuDemandMix, type DemandShape, type GpuDemandMixOptions, type GpuRequestShape } from './gpu-demand';
export { expectedFragmentMilli, freeGpuMilli, freeGpuMilliAfter, gpuFragmentationOf } from './gpu-fragmentation';
export { fixedOrder, type FixedComparator } from './offer-order';
