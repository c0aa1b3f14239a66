import { z } from 'zod';
import { dataClassSchema, labelsSchema, poolSchema, taintSchema } from './common';
import { nodeResourcesSchema } from './resources';

/** Node ids appear in NATS subjects, so they are a single subject token. */
export const nodeIdSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, 'must be letters, digits, - and _ (it is used as a NATS subject token)');

/** FENCE_SLACK_MS: what the fence rule adds for timer ticks and the scheduler's liveness sweep. */
export const FENCE_SLACK_MS = 500;

/**
 * The fence rule, one place for agent and scheduler: an agent cut off from NATS for `afterMs` stops its
 * tasks (SIGTERM, SIGKILL `graceMs` later); the scheduler declares the node down after `downAfterMs` of
 * silence. Two attempts never overlap only if the fence has fired by then: afterMs + graceMs + slack ≤ downAfterMs.
 */
export function fenceIsSafe(fence: { afterMs: number; graceMs: number }, downAfterMs: number): boolean {
  return fence.afterMs + fence.graceMs + FENCE_SLACK_MS <= downAfterMs;
}

/** Whether a node silent for `silentMs` must have fenced itself: its tasks are certainly stopped. */
export function fenceHasFired(fence: { afterMs: number; graceMs: number }, silentMs: number): boolean {
  return silentMs >= fence.afterMs + fence.graceMs + FENCE_SLACK_MS;
}

/**
 * What the node's agent enforces, as it says at registration (shown by GET /v1/nodes/:id): which cgroup
 * hierarchy holds each task's limits (`none` with the reason when it cannot create cgroups), whether
 * sandbox and restricted tasks run in namespaces (bubblewrap), and its fence timings.
 */
export const enforcementSchema = z.object({
  cgroups: z.enum(['v1', 'v2', 'none']),
  /** Why cgroups are `none`, or what part of them is missing (e.g. no devices controller). */
  reason: z.string().max(500).optional(),
  isolation: z.enum(['bwrap', 'none']).default('none'),
  /** Why isolation is `none`: sandbox and restricted tasks then fail instead of running unisolated. */
  isolationReason: z.string().max(500).optional(),
  /** The agent stops its tasks after `afterMs` without NATS, SIGKILL `graceMs` after SIGTERM. */
  fence: z.object({ afterMs: z.number().int().positive(), graceMs: z.number().int().min(0) }).optional(),
  /** Why the test task the agent ran at start failed: its nodes then carry {@link UNHEALTHY_TAINT}. */
  testTask: z.string().max(500).optional(),
});
export type Enforcement = z.infer<typeof enforcementSchema>;

/**
 * The taint of a node whose agent could not run its test task at start (as Slurm drains a node its health
 * check fails): no job is placed there unless it tolerates the taint, until the agent starts again.
 */
export const UNHEALTHY_TAINT = { key: 'qingyang.io/unhealthy', value: 'test-task-failed', effect: 'NoSchedule' } as const;

/** Static description of a node, as its agent registers it. */
export const nodeSpecSchema = z
  .object({
    id: nodeIdSchema,
    pool: poolSchema,
    /** Availability zone / hall. */
    zone: z.string().min(1).max(63).default('default'),
    /** Rack or leaf switch: gangs prefer to stay within one. */
    rack: z.string().max(63).default(''),
    labels: labelsSchema.default({}),
    taints: z.array(taintSchema).max(32).default([]),
    capacity: nodeResourcesSchema,
    /** What the scheduler may allocate; defaults to capacity. */
    allocatable: nodeResourcesSchema.optional(),
    /** Accelerator model, e.g. A800, H20, 910B. Required when the node has GPUs. */
    gpuModel: z.string().min(1).max(32).optional(),
    /** Highest data classification the node is certified to process. */
    securityLevel: dataClassSchema.default('internal'),
    /** Nameplate power, used to turn utilisation into watts where no meter is readable. */
    ratedPowerWatts: z.number().int().min(0).max(1_000_000).optional(),
    /** Set by the agent at registration: what it enforces on this node (a node file does not set it). */
    enforcement: enforcementSchema.optional(),
  })
  .superRefine((n, ctx) => {
    const alloc = n.allocatable ?? n.capacity;
    if (alloc.gpus > 0 && !n.gpuModel) ctx.addIssue({ code: 'custom', path: ['gpuModel'], message: 'a node with GPUs must name its gpuModel' });
    for (const key of ['cpuMillis', 'memBytes', 'gpus'] as const) {
      if (alloc[key] > n.capacity[key]) {
        ctx.addIssue({ code: 'custom', path: ['allocatable', key], message: `allocatable ${key} exceeds capacity` });
      }
    }
  });
export type NodeSpec = z.infer<typeof nodeSpecSchema>;
