import { z } from 'zod';
import { dataClassSchema, labelsSchema, poolSchema, taintSchema } from './common';
import { nodeResourcesSchema } from './resources';

/** Node ids appear in NATS subjects, so they are a single subject token. */
export const nodeIdSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, 'must be letters, digits, - and _ (it is used as a NATS subject token)');

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
