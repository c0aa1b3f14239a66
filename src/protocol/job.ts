import { z } from 'zod';
import { dataClassSchema, labelRequirementSchema, labelValueSchema, labelKeySchema, labelsSchema, poolSchema, tolerationSchema } from './common';
import { taskResourcesSchema, LIMITS } from './resources';

/** Thirty days: the longest walltime or declared duration a job may have. */
export const MAX_JOB_SECONDS = 30 * 24 * 3600;

/** Where a job may run, beyond its pool and resources. */
export const jobConstraintsSchema = z.strictObject({
  /** Accepted accelerator models (any of them), e.g. ["H20", "A800"]. */
  gpuModels: z.array(z.string().min(1).max(32)).max(16).default([]),
  /** Labels a node must carry with exactly these values. */
  nodeSelector: labelsSchema.default({}),
  /** Label requirements a node must all satisfy (node affinity). */
  affinity: z.array(labelRequirementSchema).max(32).default([]),
  /** Label requirements a node must not satisfy: a node matching any of them is excluded (node anti-affinity). */
  antiAffinity: z.array(labelRequirementSchema).max(32).default([]),
  /** Soft affinity: nodes matching a term score higher, by its weight. */
  preferred: z
    .array(z.strictObject({ weight: z.number().int().min(1).max(100), requirement: labelRequirementSchema }))
    .max(16)
    .default([]),
  tolerations: z.array(tolerationSchema).max(32).default([]),
});
export type JobConstraints = z.infer<typeof jobConstraintsSchema>;

/** A job that may wait for greener power, within a limit. */
export const deferrableSchema = z
  .strictObject({
    /** Latest completion time, epoch milliseconds. */
    deadlineMs: z.number().int().min(0).optional(),
    /** Longest delay of the start past submission, in seconds. */
    maxDelaySeconds: z.number().int().min(0).max(MAX_JOB_SECONDS).optional(),
  })
  .refine((d) => d.deadlineMs !== undefined || d.maxDelaySeconds !== undefined, {
    message: 'deferrable needs deadlineMs or maxDelaySeconds',
  });
export type Deferrable = z.infer<typeof deferrableSchema>;

/** Priority class names: lower-case words such as urgent, normal, batch, best-effort. */
export const priorityClassNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a priority class name such as normal');

/** The body of `POST /v1/jobs` and of a `qy submit` job file. */
export const jobSpecSchema = z
  .strictObject({
    name: z.string().min(1).max(128).optional(),
    pool: poolSchema,
    priorityClass: priorityClassNameSchema.default('normal'),
    /** Number of tasks; more than one makes a gang that starts all or nothing. */
    tasks: z.number().int().min(1).max(LIMITS.maxTasks).default(1),
    /** Resources of each task. */
    resources: taskResourcesSchema,
    /** Whole nodes for each task. Always true in the super pool. */
    exclusive: z.boolean().optional(),
    /** Hard run-time limit in seconds; required in the super pool (it drives backfill). */
    walltimeSeconds: z.number().int().min(1).max(MAX_JOB_SECONDS).optional(),
    /** Expected run time in seconds: tasks on virtual nodes sleep this long; green and backfill planning use it. */
    durationSeconds: z.number().int().min(0).max(MAX_JOB_SECONDS).optional(),
    constraints: jobConstraintsSchema.default(() => jobConstraintsSchema.parse({})),
    dataClass: dataClassSchema.default('public'),
    deferrable: deferrableSchema.optional(),
    /** The program and its arguments (argv), run without a shell. */
    command: z.array(z.string().max(4096)).min(1).max(256).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').max(128), z.string().max(4096)).optional(),
    /** Run with a private temporary home and working directory and a reduced environment (see README). */
    sandbox: z.boolean().default(false),
    labels: z.record(labelKeySchema, labelValueSchema).optional(),
    /** Federation: the sites the job may run at (any when absent); the router picks among them. */
    sites: z.array(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a site name')).min(1).max(16).optional(),
    /** Datasets (ids from POST /v1/datasets) the job reads: their class and place steer routing. */
    inputs: z.array(z.string().min(1).max(64)).max(64).optional(),
    /** Datasets the job writes. */
    outputs: z.array(z.string().min(1).max(64)).max(64).optional(),
  })
  .superRefine((j, ctx) => {
    if (j.pool === 'super' && j.walltimeSeconds === undefined) {
      ctx.addIssue({ code: 'custom', path: ['walltimeSeconds'], message: 'jobs in the super pool need a walltimeSeconds' });
    }
    if (j.env && Object.keys(j.env).length > 64) ctx.addIssue({ code: 'custom', path: ['env'], message: 'at most 64 variables' });
  });
/** Control characters (U+0000-U+001F, U+007F): none in a job's name. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * What a new job may not hold, beyond jobSpecSchema: a NUL byte in its command or an env value (execve
 * cannot pass one: the task would fail at start), or a control character in its name (printed by `qy` and
 * the console). Checked when a job is submitted, after a retry with an Idempotency-Key has been answered, so
 * a job accepted before this rule is still replayed; logged events keep jobSpecSchema and still replay.
 * Each problem is `field: what is wrong`; none when the job is fine.
 */
export function submissionProblems(spec: Pick<JobSpec, 'name' | 'command' | 'env'>): string[] {
  const problems: string[] = [];
  if (spec.name !== undefined && CONTROL.test(spec.name)) problems.push('name: must not contain control characters');
  spec.command?.forEach((arg, i) => {
    if (arg.includes('\u0000')) problems.push(`command.${i}: must not contain a NUL byte`);
  });
  for (const [name, value] of Object.entries(spec.env ?? {})) if (value.includes('\u0000')) problems.push(`env.${name}: must not contain a NUL byte`);
  return problems;
}
export type JobSpec = z.infer<typeof jobSpecSchema>;
/** A job spec as written by a user, before defaults are applied. */
export type JobSpecInput = z.input<typeof jobSpecSchema>;
