import type { DataClass, Deferrable, JobConstraints, JobSpec, Placement, Pool, TaskResources } from '../protocol';

/** A job as the placement core sees it: the submitted spec resolved to numbers (priority, times in ms). */
export interface SchedJob {
  id: string;
  tenant: string;
  pool: Pool;
  priorityClass: string;
  /** Larger runs first. Resolved from the priority class by the caller. */
  priority: number;
  /** Resources of each task. */
  task: TaskResources;
  /** Number of tasks; more than one is a gang, placed all or nothing. */
  tasks: number;
  /** Each task takes a whole node. */
  exclusive: boolean;
  walltimeMs?: number;
  /** Declared expected run time. */
  durationMs?: number;
  constraints: JobConstraints;
  dataClass: DataClass;
  deferrable?: Deferrable;
  submittedAtMs: number;
}

/** Identity and timing the caller adds to a submitted spec. */
export interface JobIdentity {
  id: string;
  tenant: string;
  priority: number;
  submittedAtMs: number;
}

/** Turns a validated job spec into the core's job. `exclusivePools` are pools whose tasks always take whole nodes. */
export function jobFromSpec(spec: JobSpec, identity: JobIdentity, exclusivePools: readonly Pool[] = EXCLUSIVE_POOLS): SchedJob {
  // Properties are listed one by one: an object spread here cost microseconds per job on the submit path.
  return {
    id: identity.id,
    tenant: identity.tenant,
    priority: identity.priority,
    submittedAtMs: identity.submittedAtMs,
    pool: spec.pool,
    priorityClass: spec.priorityClass,
    task: spec.resources,
    tasks: spec.tasks,
    exclusive: spec.exclusive === true || exclusivePools.includes(spec.pool),
    walltimeMs: spec.walltimeSeconds === undefined ? undefined : spec.walltimeSeconds * 1000,
    durationMs: spec.durationSeconds === undefined ? undefined : spec.durationSeconds * 1000,
    constraints: spec.constraints,
    dataClass: spec.dataClass,
    deferrable: spec.deferrable,
  };
}

const EXCLUSIVE_POOLS: readonly Pool[] = ['super'];

export type { Placement, TaskPlacement } from '../protocol';

/** Why a node cannot take (another) task of a job. */
export type ReasonCode =
  | 'node-cordoned'
  | 'node-suspect'
  | 'node-down'
  | 'pool-mismatch'
  | 'gpu-model-mismatch'
  | 'no-gpus'
  | 'gpu-memory-too-small'
  | 'node-selector-mismatch'
  | 'affinity-mismatch'
  | 'anti-affinity-match'
  | 'untolerated-taint'
  | 'security-level-too-low'
  | 'node-too-small'
  | 'node-not-idle'
  | 'insufficient-gpus'
  | 'insufficient-gpu-share'
  | 'insufficient-cpu'
  | 'insufficient-memory'
  | 'insufficient-extended'
  | 'restricted-isolation'
  | 'gang-too-large';

/** Counted reasons: how many nodes were turned away for each reason. */
export type ReasonCounts = Partial<Record<ReasonCode, number>>;

/** The outcome of one placement decision. */
export type PlacementResult =
  | { ok: true; placement: Placement; nodesEvaluated: number }
  | {
      ok: false;
      /** True when no node of the pool could ever hold the job, even empty: it must be rejected, not queued. */
      never: boolean;
      /** Nodes in the pool. */
      totalNodes: number;
      reasons: ReasonCounts;
      /** Tasks the job needs. */
      tasks: number;
      /** For gangs: how many tasks fit now (or, when `never`, even when the pool is empty). */
      tasksFitting?: number;
      /** The job's wanted GPU models, for messages. */
      gpuModels: string[];
      nodesEvaluated: number;
    };

/** A placement failure, as the core returns it. */
export type PlacementFailure = Extract<PlacementResult, { ok: false }>;
