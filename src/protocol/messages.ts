import { z } from 'zod';
import { dataClassSchema, nodeStateSchema, poolSchema } from './common';
import { jobSpecSchema } from './job';
import { nodeIdSchema, nodeSpecSchema } from './node';
import { placementSchema, taskPlacementSchema } from './placement';
import { measuredUsageSchema, taskUsageSchema, usageSegmentSchema } from './usage';

/** Version of the NATS message formats; bumped on incompatible changes. */
export const PROTOCOL_VERSION = 1;

/** Job ids are single NATS subject tokens. */
export const jobIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a job id');
/** An attempt of a job: `<jobId>.<n>` is not a subject token, so attempts are `<jobId>-a<n>`. */
export const attemptIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}-a\d+$/);

// attemptIdOf, jobIdOfAttempt, taskKey and parseTaskKey: see tasks.ts.

// ---- Job events (stream QY_JOBS, subjects qy.jobs.<jobId>.<event>) -------------------------------------

/**
 * The leadership term (in the job's pool) of the scheduler that wrote an event. Replay ignores an event
 * whose term is older than a term marker of its pool before it: a deposed leader's late write (see leaderTermSchema).
 */
const termField = z.number().int().min(0).optional();

/** A job accepted by the API. */
export const jobSubmittedSchema = z.object({
  type: z.literal('submitted'),
  v: z.literal(PROTOCOL_VERSION),
  jobId: jobIdSchema,
  tenant: z.string(),
  spec: jobSpecSchema,
  submittedAtMs: z.number().int(),
  /** Resolved from the priority class at submission, so a later config change does not reorder history. */
  priority: z.number().int(),
  /** Placements the job may have before it fails for good (requeues after lost nodes count). */
  maxAttempts: z.number().int().min(1),
  idempotencyKey: z.string().optional(),
  /** Federation: the site the job was submitted at, when another site routed it here (its start waits for the claim). */
  homeSite: z.string().optional(),
  /** Federation: why the router chose this site. */
  route: z.string().optional(),
  /**
   * The first placement, when the job could be placed at once: one stored message instead of two for the
   * common case of a job that finds room on arrival.
   */
  placed: z.object({ attempt: z.literal(1), attemptId: attemptIdSchema, placement: placementSchema }).optional(),
  term: termField,
});

/** The scheduler placed an attempt of a job. */
export const jobPlacedSchema = z.object({
  type: z.literal('placed'),
  jobId: jobIdSchema,
  attempt: z.number().int().min(1),
  attemptId: attemptIdSchema,
  placement: placementSchema,
  atMs: z.number().int(),
  term: termField,
});

/** The scheduler abandoned an attempt (its node went down) and stops what is left of it. */
export const jobRequeuedSchema = z.object({
  type: z.literal('requeued'),
  jobId: jobIdSchema,
  attemptId: attemptIdSchema,
  /** Nodes whose tasks are presumed lost. */
  lostNodeIds: z.array(z.string()),
  reason: z.string(),
  atMs: z.number().int(),
  term: termField,
});

/** A user asked to cancel a job. */
export const jobCancelRequestedSchema = z.object({
  type: z.literal('cancel-requested'),
  jobId: jobIdSchema,
  reason: z.string(),
  atMs: z.number().int(),
  term: termField,
});

/** The scheduler stops a running job to make room for a higher-priority one; the job is queued again. */
export const jobPreemptedSchema = z.object({
  type: z.literal('preempted'),
  jobId: jobIdSchema,
  attemptId: attemptIdSchema,
  /** The job it makes room for. */
  byJobId: jobIdSchema,
  reason: z.string(),
  atMs: z.number().int(),
  term: termField,
});

/** What a task used, metered: energy with PUE, carbon from the grid's intensity at the time. */
export const jobMeteredSchema = z.object({
  type: z.literal('metered'),
  jobId: jobIdSchema,
  usage: taskUsageSchema,
  atMs: z.number().int(),
  term: termField,
});
export type JobMetered = z.infer<typeof jobMeteredSchema>;

/**
 * Written to the job log (subject qy.term.<pool>) by a replica when it becomes a pool's leader, before it
 * rebuilds its state: everything before the marker is in its state; a scheduler event of a job of that pool
 * after it with an older term was written late by a deposed leader and is ignored by every replay.
 */
export const leaderTermSchema = z.object({
  type: z.literal('term'),
  pool: poolSchema,
  term: z.number().int().min(1),
  holder: z.string(),
  address: z.string(),
  atMs: z.number().int(),
});
export type LeaderTerm = z.infer<typeof leaderTermSchema>;

export const jobEventSchema = z.discriminatedUnion('type', [jobSubmittedSchema, jobPlacedSchema, jobRequeuedSchema, jobCancelRequestedSchema, jobPreemptedSchema, jobMeteredSchema]);
export type JobPreempted = z.infer<typeof jobPreemptedSchema>;
export type JobSubmitted = z.infer<typeof jobSubmittedSchema>;
export type JobPlaced = z.infer<typeof jobPlacedSchema>;
export type JobRequeued = z.infer<typeof jobRequeuedSchema>;
export type JobCancelRequested = z.infer<typeof jobCancelRequestedSchema>;
export type JobEvent = z.infer<typeof jobEventSchema>;

// ---- Status reports (stream QY_JOBS, subject qy.status.<nodeId>) ---------------------------------------

/**
 * How a task of an attempt stands on its node:
 * running; succeeded (exit 0); failed (non-zero exit, signal, walltime, could not start);
 * cancelled (stopped on request); lost (the agent restarted and the process is gone).
 */
export const TASK_STATES = ['running', 'succeeded', 'failed', 'cancelled', 'lost'] as const;
export const taskStateSchema = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof taskStateSchema>;

export const statusReportSchema = z.object({
  type: z.literal('status'),
  nodeId: nodeIdSchema,
  jobId: jobIdSchema,
  attemptId: attemptIdSchema,
  taskIndex: z.number().int().min(0),
  state: taskStateSchema,
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
  reason: z.string().optional(),
  /** With the task's last report: what it used, per clock hour (energy as the node drew it, before PUE). */
  usage: z.array(usageSegmentSchema).optional(),
  /** With the task's last report: CPU seconds and peak memory from its cgroup (when it had one). */
  measured: measuredUsageSchema.optional(),
  atMs: z.number().int(),
});
export type StatusReport = z.infer<typeof statusReportSchema>;

// ---- Work for agents (stream QY_ASSIGN, subject qy.assign.<agentId>.<nodeId>) ---------------------------

/** Run these tasks of an attempt on this node. */
export const assignmentSchema = z.object({
  type: z.literal('assign'),
  jobId: jobIdSchema,
  attemptId: attemptIdSchema,
  nodeId: nodeIdSchema,
  tenant: z.string(),
  tasks: z.array(taskPlacementSchema).min(1),
  /** Node id of each rank (task index) of the job, for gangs. */
  hosts: z.array(z.string()),
  command: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
  walltimeMs: z.number().int().optional(),
  /** Declared run time: tasks on virtual nodes sleep this long. */
  durationMs: z.number().int().optional(),
  dataClass: dataClassSchema,
  /** Run in the agent's sandbox: private temporary home, reduced environment. */
  sandbox: z.boolean().default(false),
  /** The leadership term of the scheduler that sent it: agents ignore work from a term older than one they have seen. */
  term: z.number().int().min(0).optional(),
  atMs: z.number().int(),
});
export type Assignment = z.infer<typeof assignmentSchema>;

/** Stop these tasks of an attempt (SIGTERM, then SIGKILL after the grace period). */
export const cancelOrderSchema = z.object({
  type: z.literal('cancel'),
  jobId: jobIdSchema,
  attemptId: attemptIdSchema,
  nodeId: nodeIdSchema,
  taskIndexes: z.array(z.number().int().min(0)),
  reason: z.string(),
  graceMs: z.number().int().min(0),
  term: z.number().int().min(0).optional(),
  atMs: z.number().int(),
});
export type CancelOrder = z.infer<typeof cancelOrderSchema>;

export const agentWorkSchema = z.discriminatedUnion('type', [assignmentSchema, cancelOrderSchema]);
export type AgentWork = z.infer<typeof agentWorkSchema>;

// ---- Core NATS: heartbeats, registration, logs ----------------------------------------------------------

export const heartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  nodeId: nodeIdSchema,
  atMs: z.number().int(),
  /** CPU busy share over the last interval, 0..1. */
  cpuUtil: z.number().min(0).max(1),
  memUsedBytes: z.number().int().min(0),
  gpus: z.array(z.object({ index: z.number().int().min(0), util: z.number().min(0).max(1), memUsedBytes: z.number().int().min(0) })).default([]),
  powerWatts: z.number().min(0),
  /** Share of the node's electricity from renewable sources, 0..1. */
  greenShare: z.number().min(0).max(1),
  /** Where the power figure came from: rapl, nvml, model (utilisation × rated power) or simulated (a virtual node's). */
  powerSource: z.enum(['rapl', 'nvml', 'model', 'simulated']),
  /** Tasks running now, as task keys `<attemptId>/<taskIndex>` (taskKey). */
  running: z.array(z.string()).default([]),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const registrationSchema = z.object({
  type: z.literal('register'),
  v: z.literal(PROTOCOL_VERSION),
  /** The agent process serving this node; its durable consumer is named after it. */
  agentId: nodeIdSchema,
  node: nodeSpecSchema,
});
export type Registration = z.infer<typeof registrationSchema>;

export const registrationReplySchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    heartbeatIntervalMs: z.number().int().positive(),
    nodeState: nodeStateSchema,
    /** Silence after which the scheduler declares the node down and runs its work elsewhere: an agent cut off from NATS stops its tasks well before. */
    downAfterMs: z.number().int().positive().optional(),
  }),
  /** `code`: one of REGISTRATION_ERROR_CODES. */
  z.object({ ok: z.literal(false), code: z.string(), message: z.string() }),
]);
export type RegistrationReply = z.infer<typeof registrationReplySchema>;

export const logRequestSchema = z.object({
  jobId: jobIdSchema,
  attemptId: attemptIdSchema,
  taskIndex: z.number().int().min(0),
  maxBytes: z.number().int().min(1).max(1024 * 1024),
});
export type LogRequest = z.infer<typeof logRequestSchema>;

export const logReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), text: z.string(), truncated: z.boolean() }),
  z.object({ ok: z.literal(false), message: z.string() }),
]);
export type LogReply = z.infer<typeof logReplySchema>;

/** The largest grid carbon intensity taken from a feed or a store (gCO2/kWh): well above any grid's (coal, about 1,000). */
export const MAX_G_PER_KWH = 5_000;

/**
 * A reading of grid carbon intensity from an operator's feed: published on QY_CARBON_SUBJECT, or the body
 * of QY_CARBON_URL (polled). `atMs` is when the value holds (the reading's age counts from it); absent, from
 * when it was received.
 */
export const carbonReadingSchema = z.object({
  gPerKwh: z.number().min(0).max(MAX_G_PER_KWH),
  atMs: z.number().int().min(0).optional(),
  source: z.string().max(200).optional(),
});
export type CarbonReading = z.infer<typeof carbonReadingSchema>;

/**
 * National Grid ESO's Carbon Intensity API for Great Britain (`https://api.carbonintensity.org.uk/intensity`, a
 * region's `/regional/regionid/N` has the same half-hours one level down): half-hours from `from` to `to` with
 * the forecast, and the actual value once known (null before). Taken as it is by QY_CARBON_URL and
 * QY_CARBON_SUBJECT; see `readingOf` in src/green/live-carbon.ts for which half-hour counts.
 */
const nationalGridHalfHourSchema = z.object({
  from: z.string(),
  to: z.string().optional(),
  intensity: z.object({ forecast: z.number().nullish(), actual: z.number().nullish() }),
});
export const nationalGridIntensitySchema = z.object({
  data: z.union([
    z.array(nationalGridHalfHourSchema).min(1),
    // A region (`/regional/regionid/N`: a list of one; `/regional/intensity/…/regionid/N`: the region itself).
    z.array(z.object({ data: z.array(nationalGridHalfHourSchema).min(1) })).length(1),
    z.object({ data: z.array(nationalGridHalfHourSchema).min(1) }),
  ]),
});
export type NationalGridIntensity = z.infer<typeof nationalGridIntensitySchema>;
export type NationalGridHalfHour = z.infer<typeof nationalGridHalfHourSchema>;

/**
 * Electricity Maps' latest carbon intensity of a zone (`https://api.electricitymaps.com/v3/carbon-intensity/latest?zone=DE`,
 * with its token in an `auth-token` header, QY_CARBON_HEADERS_FILE): `datetime` is the hour the value holds for.
 */
export const electricityMapsLatestSchema = z.object({
  carbonIntensity: z.number(),
  datetime: z.string(),
  zone: z.string().optional(),
});

/**
 * A forecast of grid carbon intensity a service publishes (the body of QY_CARBON_FORECAST_URL): each value holds
 * from its `atMs` to the next one's, in any order.
 */
export const carbonForecastSchema = z.object({
  forecast: z
    .array(z.object({ atMs: z.number().int().min(0), gPerKwh: z.number().min(0).max(MAX_G_PER_KWH) }))
    .min(1)
    .max(20_000),
});

/** Electricity Maps' forecast of a zone (`https://api.electricitymaps.com/v3/carbon-intensity/forecast?zone=DE`): hourly values ahead. */
export const electricityMapsForecastSchema = z.object({
  forecast: z
    .array(z.object({ carbonIntensity: z.number(), datetime: z.string() }))
    .min(1)
    .max(20_000),
  zone: z.string().optional(),
});

/**
 * The green signal a scheduler observed (bucket qy-green, key `history`): `[atMs, gPerKwh]` in time order, the
 * last 8 days at most, written by the leader of `general` as it observes. A scheduler that starts replays it
 * into its forecaster, so after a restart forecasts, and the errors deferral is held to, do not start from nothing.
 */
export const greenHistorySchema = z.object({
  v: z.literal(1),
  savedAtMs: z.number().int().min(0),
  savedBy: z.string(),
  points: z.array(z.tuple([z.number().int().min(0), z.number().min(0).max(MAX_G_PER_KWH)])).max(100_000),
});
export type GreenHistory = z.infer<typeof greenHistorySchema>;
