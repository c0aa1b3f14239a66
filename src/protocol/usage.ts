import { z } from 'zod';
import { poolSchema } from './common';

/** How a tenant's use is priced: `public-interest` is public governance and welfare work, free or discounted as the price table says. */
export const billingClassSchema = z.enum(['standard', 'public-interest']);
export type BillingClass = z.infer<typeof billingClassSchema>;

const count = z.number().int().min(0);

/**
 * What one task used within one clock hour, in integers so that any sum is exact: milli-core seconds,
 * milli-GPU seconds by GPU model (a whole GPU is 1000), MiB seconds of memory, and energy in milliwatt-hours.
 * Hours are clock hours (UTC; one hour is the same instant in every time zone the cluster bills in).
 */
export const usageSegmentSchema = z.strictObject({
  /** Start of the clock hour, epoch ms. */
  hourStartMs: z.number().int().min(0),
  /** Milliseconds the task ran within the hour. */
  runMs: count,
  cpuMilliSeconds: count,
  gpuMilliSeconds: z.record(z.string().min(1).max(32), count).default({}),
  memMiBSeconds: count,
  /** Energy attributed to the task: the node's measured draw times the task's share of the node (IT energy at the agent; with PUE once metered). */
  energyMilliWh: count,
  /** The part of energyMilliWh that was green, from the node's green share at each sample. */
  greenMilliWh: count,
  /** Carbon of the energy that was not green, from the grid's intensity at the time, in milligrams (set when metered). */
  carbonMg: count.default(0),
});
export type UsageSegment = z.infer<typeof usageSegmentSchema>;

/**
 * What a task used as its cgroup counted it (real use, not the allocation): CPU seconds over all its
 * processes and the peak of its memory. Absent where the agent runs tasks without cgroups.
 */
export const measuredUsageSchema = z.strictObject({
  cpuSeconds: z.number().min(0),
  peakMemBytes: count,
});
export type MeasuredUsage = z.infer<typeof measuredUsageSchema>;

/** The metered use of one task of one attempt: what billing and disclosure read (job event `metered`). */
export const taskUsageSchema = z.strictObject({
  jobId: z.string(),
  attemptId: z.string(),
  taskIndex: z.number().int().min(0),
  tenant: z.string(),
  pool: poolSchema,
  nodeId: z.string(),
  /** Pricing class of the tenant when the task ran: `standard`, or `public-interest` for public governance and welfare work. */
  billingClass: billingClassSchema.default('standard'),
  segments: z.array(usageSegmentSchema),
  /** CPU seconds and peak memory from the task's cgroup, when it had one. */
  measured: measuredUsageSchema.optional(),
});
export type TaskUsage = z.infer<typeof taskUsageSchema>;
