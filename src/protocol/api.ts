import { z } from 'zod';
import { dataClassSchema, labelsSchema, nodeStateSchema, poolSchema } from './common';
import { taskResourcesSchema } from './resources';
import { billingClassSchema } from './usage';

/** Job lifecycle as the API shows it. */
export const JOB_STATES = ['pending', 'placed', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
export const jobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof jobStateSchema>;

/** Terminal states: nothing changes a job after these. */
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Every error response: a stable code, a message naming what was wrong, and the HTTP status. */
export const errorBodySchema = z.object({
  code: z.string().describe('Stable error code, e.g. QY_ERR_VALIDATION'),
  message: z.string(),
  statusCode: z.number().int(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

export const submitResponseSchema = z.object({ id: z.string(), state: jobStateSchema });

const taskViewSchema = z.object({
  taskIndex: z.number().int(),
  nodeId: z.string(),
  cpuMillis: z.number().int(),
  memBytes: z.number().int(),
  gpuIndices: z.array(z.number().int()),
  gpuMilliEach: z.number().int(),
  state: z.string().describe('assigned, running, succeeded, failed, cancelled or lost'),
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
});

export const jobViewSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  tenant: z.string(),
  pool: poolSchema,
  priorityClass: z.string(),
  dataClass: dataClassSchema,
  state: jobStateSchema,
  tasks: z.number().int(),
  resources: taskResourcesSchema,
  attempts: z.number().int().describe('Placements so far'),
  maxAttempts: z.number().int(),
  attemptId: z.string().optional(),
  placement: z.array(taskViewSchema).optional().describe('Where each task of the current attempt runs'),
  pendingReason: z.string().optional(),
  preempting: z.array(z.string()).optional().describe('Lower-priority jobs stopped to make room for this one'),
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
  reason: z.string().optional().describe('Why the job ended as it did, or why its last attempt was requeued'),
  submittedAt: z.string(),
  placedAt: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  history: z.array(
    z.object({ attemptId: z.string(), nodes: z.array(z.string()), outcome: z.string(), reason: z.string().optional(), at: z.string() }),
  ),
});
export type JobView = z.infer<typeof jobViewSchema>;

export const jobListSchema = z.object({
  items: z.array(jobViewSchema),
  /** Pass as `cursor` to get the next page; absent on the last page. */
  nextCursor: z.string().optional(),
});

export const jobListQuerySchema = z.object({
  state: jobStateSchema.optional(),
  pool: poolSchema.optional(),
  /** Operators only: the jobs of one tenant. */
  tenant: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(128).optional(),
});

export const jobLogQuerySchema = z.object({
  task: z.coerce.number().int().min(0).default(0),
  bytes: z.coerce.number().int().min(1).max(1024 * 1024).default(16 * 1024),
});
export const jobLogSchema = z.object({ jobId: z.string(), attemptId: z.string(), taskIndex: z.number().int(), nodeId: z.string(), text: z.string(), truncated: z.boolean() });

export const nodeViewSchema = z.object({
  id: z.string(),
  pool: poolSchema,
  state: nodeStateSchema,
  cordoned: z.boolean(),
  draining: z.boolean(),
  zone: z.string(),
  rack: z.string(),
  gpuModel: z.string().optional(),
  labels: labelsSchema,
  securityLevel: dataClassSchema,
  allocatable: z.object({ cpuMillis: z.number().int(), memBytes: z.number().int(), gpus: z.number().int() }),
  allocated: z.object({ cpuMillis: z.number().int(), memBytes: z.number().int(), gpuMilli: z.number().int() }),
  tasks: z.number().int(),
  powerWatts: z.number(),
  greenShare: z.number(),
  lastHeartbeatAt: z.string().optional(),
});
export type NodeView = z.infer<typeof nodeViewSchema>;

export const drainBodySchema = z
  .object({ requeue: z.boolean().default(false).describe('Stop the node’s jobs now and put them back in the queue') })
  .default({ requeue: false });

export const poolViewSchema = z.object({
  pool: poolSchema,
  nodes: z.record(nodeStateSchema, z.number().int()),
  capacity: z.object({ cpuMillis: z.number().int(), memBytes: z.number().int(), gpus: z.number().int() }),
  allocated: z.object({ cpuMillis: z.number().int(), memBytes: z.number().int(), gpuMilli: z.number().int() }),
  queue: z.object({ pending: z.number().int() }),
  jobs: z.object({ placed: z.number().int(), running: z.number().int() }),
});
export type PoolView = z.infer<typeof poolViewSchema>;

const poolQuotaViewSchema = z.object({
  cpuMillis: z.number().int().optional(),
  gpus: z.number().int().optional(),
  runningJobs: z.number().int().optional(),
  pendingJobs: z.number().int().optional(),
});

/** Quotas to set for a tenant: per pool, any of cpuMillis, gpus, runningJobs, pendingJobs; absent is unlimited. */
export const quotasBodySchema = z.partialRecord(poolSchema, poolQuotaViewSchema.strict());

export const tenantViewSchema = z.object({
  name: z.string(),
  displayName: z.string().optional(),
  weight: z.number(),
  priorityClasses: z.array(z.string()).optional(),
  dataClasses: z.array(dataClassSchema),
  billingClass: billingClassSchema,
  pools: z.array(
    z.object({
      pool: poolSchema,
      quota: poolQuotaViewSchema,
      used: z.object({ cpuMillis: z.number().int(), memBytes: z.number().int(), gpuMilli: z.number().int(), runningJobs: z.number().int(), pendingJobs: z.number().int() }),
    }),
  ),
});
export type TenantView = z.infer<typeof tenantViewSchema>;

export const auditQuerySchema = z.object({
  afterSeq: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  actor: z.string().max(64).optional(),
  action: z.string().max(64).optional(),
  target: z.string().max(128).optional(),
  since: z.iso.datetime().optional(),
});
