import { z } from 'zod';

/**
 * Upper bounds that reject absurd requests at the edge. Capacity is kept in integers (milli-cores, bytes,
 * milli-GPUs): JavaScript numbers are exact for integers below 2^53, and these bounds keep every sum far below it.
 */
export const LIMITS = {
  maxCpuMillis: 1_024_000, // 1,024 cores
  maxMemBytes: 64 * 1024 ** 4, // 64 TiB
  maxGpus: 64,
  maxGpuMemBytes: 1024 ** 4, // 1 TiB per device
  maxExtended: 1_000_000_000_000,
  maxTasks: 4096,
  maxExtendedKinds: 16,
} as const;

/** One physical GPU is 1000 milli-GPUs; a fractional share lives on exactly one GPU. */
export const GPU_MILLI_PER_GPU = 1000;

/** Names of extended resources, e.g. `rdma/hca` or `huawei.com/ascend-310`. */
export const extendedNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9]([a-zA-Z0-9._/-]*[a-zA-Z0-9])?$/, 'must be a resource name such as rdma/hca');

const count = (max: number) => z.number().int().min(0).max(max);

/** Resources one task asks for. */
export const taskResourcesSchema = z
  .strictObject({
    /** CPU in thousandths of a core. */
    cpuMillis: z.number().int().min(1).max(LIMITS.maxCpuMillis),
    /** Memory in bytes. */
    memBytes: count(LIMITS.maxMemBytes),
    /** Whole GPUs (accelerators) for this task. */
    gpus: count(LIMITS.maxGpus).default(0),
    /** A share of one GPU in milli-GPUs (1..999), as inference work asks; never together with `gpus`. */
    gpuMilli: z.number().int().min(0).max(GPU_MILLI_PER_GPU - 1).default(0),
    /** Minimum memory of each GPU device the task uses, in bytes. */
    gpuMemBytes: count(LIMITS.maxGpuMemBytes).default(0),
    /** Extended resources by name (RDMA adapters, FPGAs, licences). */
    extended: z.record(extendedNameSchema, count(LIMITS.maxExtended)).default({}),
  })
  .superRefine((r, ctx) => {
    if (r.gpus > 0 && r.gpuMilli > 0) {
      ctx.addIssue({ code: 'custom', path: ['gpuMilli'], message: 'ask for whole gpus or a gpuMilli share of one GPU, not both' });
    }
    if (Object.keys(r.extended).length > LIMITS.maxExtendedKinds) {
      ctx.addIssue({ code: 'custom', path: ['extended'], message: `at most ${LIMITS.maxExtendedKinds} extended resources` });
    }
  });
export type TaskResources = z.infer<typeof taskResourcesSchema>;

/** What a node has: capacity (the hardware) or allocatable (what the scheduler may hand out). */
export const nodeResourcesSchema = z.object({
  cpuMillis: count(LIMITS.maxCpuMillis),
  memBytes: count(LIMITS.maxMemBytes),
  gpus: count(LIMITS.maxGpus).default(0),
  /** Memory of each GPU device in bytes. */
  gpuMemBytes: count(LIMITS.maxGpuMemBytes).default(0),
  extended: z.record(extendedNameSchema, count(LIMITS.maxExtended)).default({}),
});
export type NodeResources = z.infer<typeof nodeResourcesSchema>;
