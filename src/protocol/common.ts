import { z } from 'zod';

/** The three pools of the cluster. */
export const POOLS = ['general', 'intelligent', 'super'] as const;
export const poolSchema = z.enum(POOLS).describe('Pool: general (CPU), intelligent (GPU/NPU) or super (HPC, whole nodes)');
export type Pool = z.infer<typeof poolSchema>;

/**
 * Data classification levels, lowest first. A job carries one; a node is certified up to one and
 * may run jobs of that level or below.
 */
export const DATA_CLASSES = ['public', 'internal', 'sensitive', 'restricted'] as const;
export const dataClassSchema = z.enum(DATA_CLASSES);
export type DataClass = z.infer<typeof dataClassSchema>;

/** Rank of a data class (public 0 … restricted 3), for comparisons. */
export function dataClassRank(level: DataClass): number {
  return DATA_CLASSES.indexOf(level);
}

/** Node lifecycle states. Only `ready` nodes receive new work. */
export const NODE_STATES = ['ready', 'cordoned', 'suspect', 'down'] as const;
export const nodeStateSchema = z.enum(NODE_STATES);
export type NodeState = z.infer<typeof nodeStateSchema>;

/** Label keys and values: the Kubernetes syntax, so labels can come from Node objects unchanged. */
export const labelKeySchema = z
  .string()
  .min(1)
  .max(317)
  .regex(/^([a-zA-Z0-9.-]+\/)?[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$/, 'must be a label key such as qy/rack or zone');
export const labelValueSchema = z
  .string()
  .max(63)
  .regex(/^(([a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?)?)$/, 'must be a label value (alphanumerics, - _ .)');
export const labelsSchema = z.record(labelKeySchema, labelValueSchema);
export type Labels = z.infer<typeof labelsSchema>;

/** A requirement on node labels, as in Kubernetes' node affinity. */
export const labelRequirementSchema = z
  .object({
    key: labelKeySchema,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']),
    values: z.array(labelValueSchema).max(64).default([]),
  })
  .superRefine((r, ctx) => {
    const needsValues = r.operator === 'In' || r.operator === 'NotIn';
    const needsOne = r.operator === 'Gt' || r.operator === 'Lt';
    if (needsValues && r.values.length === 0) ctx.addIssue({ code: 'custom', path: ['values'], message: `${r.operator} needs at least one value` });
    if (needsOne && (r.values.length !== 1 || !/^-?\d+$/.test(r.values[0] ?? ''))) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `${r.operator} needs exactly one integer value` });
    }
    if (!needsValues && !needsOne && r.values.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `${r.operator} takes no values` });
    }
  });
export type LabelRequirement = z.infer<typeof labelRequirementSchema>;

/** A taint repels jobs that do not tolerate it (NoSchedule) or makes nodes less preferred (PreferNoSchedule). */
export const taintSchema = z.object({
  key: labelKeySchema,
  value: labelValueSchema.default(''),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule']),
});
export type Taint = z.infer<typeof taintSchema>;

/** A toleration lets a job run on nodes with a matching taint. An empty key with Exists tolerates everything. */
export const tolerationSchema = z.object({
  key: z.union([labelKeySchema, z.literal('')]).default(''),
  operator: z.enum(['Equal', 'Exists']).default('Equal'),
  value: labelValueSchema.default(''),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule']).optional(),
});
export type Toleration = z.infer<typeof tolerationSchema>;
