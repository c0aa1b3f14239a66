import { z } from 'zod';
import { dataClassSchema, labelsSchema, nodeStateSchema, poolSchema } from './common';
import { deferrableSchema, jobConstraintsSchema } from './job';
import { enforcementSchema } from './node';
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
  reason: z.string().optional(),
  cpuSeconds: z.number().optional().describe("CPU seconds the task used, from its cgroup"),
  peakMemBytes: z.number().int().optional().describe("The task's peak memory, from its cgroup"),
});

/** What a job was submitted with beyond its resources, for one job's page; `env` values stay out of views (they may hold secrets). */
export const jobSpecViewSchema = z.object({
  command: z.array(z.string()).optional(),
  envNames: z.array(z.string()).describe('Names of the variables set in env'),
  walltimeSeconds: z.number().int().optional(),
  durationSeconds: z.number().int().optional(),
  exclusive: z.boolean().optional(),
  constraints: jobConstraintsSchema,
  deferrable: deferrableSchema.optional(),
  sandbox: z.boolean(),
  labels: z.record(z.string(), z.string()).optional(),
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
  spec: jobSpecViewSchema.optional().describe('GET /v1/jobs/:id only (lists leave it out)'),
  /** Federation: the site that runs the job, and why the router chose it. */
  site: z.string().optional(),
  route: z.string().optional(),
  /** Federation: the site the job was submitted at, when it runs elsewhere. */
  homeSite: z.string().optional(),
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
  /** With `until`, a window as `sacct -S/-E` takes it: jobs not finished before `since` and submitted before `until`. */
  since: z.iso.datetime({ offset: true }).optional().describe('Jobs still in the system at or after this time (not finished before it), ISO 8601'),
  until: z.iso.datetime({ offset: true }).optional().describe('Jobs submitted before this time, ISO 8601'),
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
  enforcement: enforcementSchema.optional().describe('What the agent enforces: cgroups (v1, v2 or none, with the reason), isolation, fence timings'),
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

/** Where the green signal comes from now, and how old the live feed's last reading is. */
export const greenSignalSourceSchema = z.object({
  source: z.enum(['live', 'carbon-file', 'green-share']).describe("live: the feed of QY_CARBON_URL or QY_CARBON_SUBJECT, while fresh; carbon-file: the grid's intensity from QY_CARBON_FILE; green-share: the constant intensity times the nodes' non-green share"),
  liveAgeSeconds: z.number().optional().describe("Age of the live feed's last reading (with a feed configured, after its first reading)"),
  liveStale: z.boolean().optional().describe('With a feed configured: its last reading is older than QY_CARBON_STALE_MS (or none came), so the signal has fallen back'),
});

export type GreenSignalSource = z.infer<typeof greenSignalSourceSchema>;
export const poolsResponseSchema = z.object({ items: z.array(poolViewSchema), greenSignal: greenSignalSourceSchema });

const poolQuotaViewSchema = z.object({
  cpuMillis: z.number().int().optional(),
  gpus: z.number().int().optional(),
  runningJobs: z.number().int().optional(),
  pendingJobs: z.number().int().optional(),
});

/** Quotas to set for a tenant: per pool, any of cpuMillis, gpus, runningJobs, pendingJobs; absent is unlimited. */
export const quotasBodySchema = z.partialRecord(poolSchema, poolQuotaViewSchema.strict());
/** Quotas as the API takes them (PUT /v1/tenants/:name/quotas) and a tenants file holds them. */
export type QuotasBody = z.infer<typeof quotasBodySchema>;

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

// ---- The console's reads (GET /v1/whoami, /v1/green, /v1/audit/verify, /v1/series) -------------------------

/** Who a token belongs to: the console shows operators' pages only to operators. */
export const whoamiSchema = z.object({
  kind: z.enum(['tenant', 'operator']),
  name: z.string(),
  displayName: z.string().optional(),
  /** For a tenant acting through an operator (X-Qy-Act-As): that operator. */
  via: z.string().optional(),
});

export const greenQuerySchema = z.strictObject({
  hours: z.coerce.number().int().min(1).max(72).default(24).describe('How far ahead the forecast looks'),
});

/** The green signal, its forecast, the pools' power and the jobs held for greener power. */
export const greenViewSchema = z.object({
  at: z.string(),
  signal: greenSignalSourceSchema.extend({
    gPerKwh: z.number().describe('What green deferral plans against, now'),
    gridGPerKwh: z.number().describe('Carbon intensity of grid electricity now, as metering charges it'),
  }),
  forecast: z.array(z.object({ at: z.string(), gPerKwh: z.number() })).describe('The signal expected at each step ahead, each value in force until the next'),
  forecaster: z
    .object({
      name: z.string(),
      observedSince: z.string().optional().describe('The oldest observation it learns from (up to 8 days back; after a restart, from the history in qy-green)'),
      levelGPerKwh: z
        .number()
        .optional()
        .describe("The signal's time-weighted mean over the last day observed: a quarter of it is the error plans hold against a forecast not yet measured that far ahead. Absent before anything is observed"),
      errors: z
        .array(z.object({ aheadHours: z.number(), gPerKwh: z.number().nullable() }))
        .describe("Mean absolute error of its forecasts this far ahead over the last week (plans hold the last half day's instead where it is larger); null until measured 12 times (plans meanwhile hold a quarter of the signal's level against a forecast that far ahead)"),
      published: z
        .object({
          aheadHours: z.number().describe('How far ahead the latest published forecast reaches now (0: it has run out, and the blend goes on without it)'),
          errors: z.array(z.object({ aheadHours: z.number(), gPerKwh: z.number().nullable() })).describe('Recent mean absolute error of the published forecasts this far ahead, as measured here; null until measured 12 times'),
        })
        .optional()
        .describe('With QY_CARBON_FORECAST_URL: the published forecast blended in, weighed by these errors'),
    })
    .describe('The live forecaster deferral plans with (QY_GREEN_FORECASTER)'),
  deferral: z.object({ enabled: z.boolean(), stepMs: z.number().int() }),
  pools: z.array(
    z.object({
      pool: poolSchema,
      nodes: z.number().int(),
      powerWatts: z.number(),
      greenWatts: z.number(),
      deferralShare: z.number().describe("Share of the pool deferred jobs may book in any step now: QY_GREEN_DEFERRAL_SHARE's, more while less than half the pool's recent work cannot wait, never more than the room its load and its swings leave free"),
    }),
  ),
  deferred: z
    .array(z.object({ id: z.string(), name: z.string().optional(), tenant: z.string(), pool: poolSchema, plannedStartAt: z.string(), reason: z.string() }))
    .describe('Jobs held for greener power, earliest planned start first (a tenant sees its own)'),
});
export type GreenView = z.infer<typeof greenViewSchema>;

/** Records of a verified chain that were in the accounting archive. */
const archivedRecords = z.number().int().optional().describe('Records of the chain checked in the accounting archive (the rest came from the live stream); absent without an archive');
/** What checking the whole audit chain found (as `qy audit verify`). */
export const auditVerdictSchema = z.union([
  z.object({ ok: z.literal(true), records: z.number().int(), lastHash: z.string(), archivedRecords, checkedAt: z.string() }),
  z.object({ ok: z.literal(false), seq: z.number().int(), problem: z.string(), archivedRecords, checkedAt: z.string() }),
]);

/** The recorded series the console may chart, and whether a Prometheus is configured to give them. */
export const seriesListSchema = z.object({ prometheus: z.boolean(), series: z.array(z.string()) });

export const seriesQuerySchema = z.strictObject({
  minutes: z.coerce.number().int().min(5).max(7 * 24 * 60).default(180).describe('How far back from now'),
  stepSeconds: z.coerce.number().int().min(5).max(3600).optional().describe('Resolution; default: about 240 points over the range'),
});

/** A range query's result: one line per label set, values by time (null where Prometheus has NaN). */
export const seriesRangeSchema = z.object({
  series: z.string(),
  start: z.string(),
  end: z.string(),
  stepSeconds: z.number().int(),
  result: z.array(z.object({ labels: z.record(z.string(), z.string()), points: z.array(z.tuple([z.number(), z.number().nullable()])) })),
});
export type SeriesRange = z.infer<typeof seriesRangeSchema>;
