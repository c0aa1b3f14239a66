import type { Pool } from '../../protocol';
import type { BackfillProfile } from '../backfill';
import type { ClusterState } from '../cluster';
import type { Policy } from '../framework';
import type { Placement, PlacementFailure, PlacementResult, SchedJob } from '../model';
import type { Hold } from '../pending';
import type { PreparedJobWithCache } from '../prepare';
import type { PlaceOptions } from '../placement';
import type { JobComparator } from '../queue';
import type { QuotaLimits } from './quota';

/**
 * How the scheduling pipeline reaches the world. The service and the simulator each implement these ports;
 * everything between them — the order of the stages, what each decides, the EASY reservation, the storm
 * guard — is the pipeline's, written once.
 */
export interface CyclePorts {
  /** Leadership: whether this scheduler places the pool's jobs now, and what to tell the jobs when it does not. */
  leadership?: { leads(pool: Pool): boolean; notLeading(pool: Pool): string };
  /** PreEnqueue: whether a job is held for later (a green deferral), asked when it is first offered. */
  hold?: {
    hold(job: SchedJob, nowMs: number): Hold | undefined;
    /** Held jobs whose plan a newer forecast has made worse than starting now: released at once, to be planned again. */
    revise?(nowMs: number): readonly string[];
    /**
     * Why a job released from its hold may not start yet, if it may not: its pool is busier than its plan
     * counted on (asked before the job's placement is searched; never of an escalated job).
     */
    admit?(job: SchedJob, nowMs: number, cluster: ClusterState): string | undefined;
  };
  /** PreFilter: a tenant's limits in a pool. */
  quotaOf?(tenant: string, pool: Pool): QuotaLimits;
  /** Filter and Score: placeJob, or a wrapper of it (the service times it). */
  place?(cluster: ClusterState, p: PreparedJobWithCache, policy: Policy, options?: PlaceOptions): PlacementResult;
  /** PostFilter: lower-priority jobs that may be stopped to make room (absent: no preemption). */
  preemption?: PreemptionPort;
  /** Permit: EASY backfilling of a pool, when the pool backfills. */
  backfill?(pool: Pool): BackfillProfile | undefined;
  /** Reserve: power caps. */
  power?: PowerPort;
  /** Bind: the job is placed (the service logs the decision, the simulator starts the job). */
  bind(job: SchedJob, placement: Placement, nowMs: number): void;
  /** Sees every decision that did not place a job (metrics, counters), with the placement failure if there was one. */
  observe?(job: SchedJob, stage: WaitStage, nowMs: number, failure?: PlacementFailure): void;
}

/** What preemption needs from the world. */
export interface PreemptionPort {
  /** A placed job as a possible victim: the job as submitted (not escalated), its start, whether it is stopping, and when it was preempted before. */
  victim(jobId: string): { job: SchedJob; startedAtMs: number; stopping: boolean; preemptedAtMs: readonly number[] } | undefined;
  /** Jobs `jobId` has stopped to make room for it that still hold resources: it waits for them. */
  stopping(jobId: string): string[];
  /** Stops the victims to make room for `by`. */
  evict(victims: string[], by: SchedJob, nowMs: number): void;
}

/** What power caps need from the world. */
export interface PowerPort {
  /** A cycle begins: estimates may be refreshed. */
  beginCycle?(nowMs: number): void;
  /** Why `placement` would take a pool or zone above its cap now, if it would. */
  blocks(placement: Placement, nowMs: number): string | undefined;
  /** A placement was made: count it until the next cycle. */
  placed?(placement: Placement): void;
}

/** The stage that kept a job from being placed, as metrics name it. */
export type WaitStage = 'not-leader' | 'green-deferral' | 'quota' | 'never-fits' | 'no-fit' | 'preempting' | 'backfill-head' | 'backfill-reservation' | 'nominated' | 'power-budget';

/** The pipeline's settings: the configuration that makes a policy. */
export interface PipelineSettings {
  policy: Policy;
  /** The queue's order at a time (fair share moves with time through aging). */
  order(nowMs: number): JobComparator;
  /** Nothing in a pool starts ahead of its first job that does not fit (strict first-come first-served). */
  strict?: boolean;
  /** The storm guard: a job is preempted at most this many times per hour (preemption needs the port too). */
  preemptionMaxPerHour?: number;
  /**
   * EASY look-ahead: placement attempts a backfilling pool makes at most per cycle (Slurm's
   * bf_max_job_test); the rest wait for the pool's next change. Unbounded when absent.
   */
  backfillDepth?: number;
}
