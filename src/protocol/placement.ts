import { z } from 'zod';
import { dataClassSchema, poolSchema } from './common';
import { extendedNameSchema } from './resources';

/** What one task of a job was given on one node. Release gives back exactly this. */
export const taskPlacementSchema = z.object({
  taskIndex: z.number().int().min(0),
  nodeId: z.string(),
  cpuMillis: z.number().int().min(0),
  memBytes: z.number().int().min(0),
  /** Physical GPU indices on the node. */
  gpuIndices: z.array(z.number().int().min(0)),
  /** Milli-GPUs taken on each listed GPU: 1000 for whole GPUs, the share for a fractional task. */
  gpuMilliEach: z.number().int().min(0).max(1000),
  extended: z.record(extendedNameSchema, z.number().int().min(0)),
});
export type TaskPlacement = z.infer<typeof taskPlacementSchema>;

/** Where every task of a job runs. */
export const placementSchema = z.object({
  jobId: z.string(),
  tenant: z.string(),
  pool: poolSchema,
  dataClass: dataClassSchema,
  exclusive: z.boolean(),
  tasks: z.array(taskPlacementSchema).min(1),
});
export type Placement = z.infer<typeof placementSchema>;
