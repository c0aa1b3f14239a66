import { jobFromSpec, type SchedJob } from '../../src/core';
import { jobSpecSchema, nodeSpecSchema, type JobSpecInput, type NodeSpec } from '../../src/protocol';

export const GiB = 1024 ** 3;

/** A node spec with defaults, validated by the wire schema. */
export function nodeSpec(id: string, overrides: Partial<Omit<NodeSpec, 'capacity'>> & { capacity?: Partial<NodeSpec['capacity']> } = {}): NodeSpec {
  const { capacity, ...rest } = overrides;
  return nodeSpecSchema.parse({
    id,
    pool: 'general',
    zone: 'z1',
    rack: 'r1',
    capacity: { cpuMillis: 16_000, memBytes: 64 * GiB, ...capacity },
    ...rest,
  });
}

/** An 8-GPU node of the intelligent pool. */
export function gpuNodeSpec(id: string, overrides: Partial<Omit<NodeSpec, 'capacity'>> & { capacity?: Partial<NodeSpec['capacity']> } = {}): NodeSpec {
  const { capacity, ...rest } = overrides;
  return nodeSpec(id, {
    pool: 'intelligent',
    gpuModel: 'A800',
    ...rest,
    capacity: { cpuMillis: 128_000, memBytes: 1024 * GiB, gpus: 8, gpuMemBytes: 80 * GiB, ...capacity },
  });
}

let seq = 0;

/** A core job from a (partial) wire spec, defaults filled in by the schema. */
export function job(spec: Partial<JobSpecInput> & { id?: string; tenant?: string; priority?: number; submittedAtMs?: number } = {}): SchedJob {
  const { id, tenant, priority, submittedAtMs, ...rest } = spec;
  const parsed = jobSpecSchema.parse({
    pool: 'general',
    resources: { cpuMillis: 1000, memBytes: GiB },
    ...(rest.pool === 'super' && rest.walltimeSeconds === undefined ? { walltimeSeconds: 3600 } : {}),
    ...rest,
  });
  return jobFromSpec(parsed, { id: id ?? `j${++seq}`, tenant: tenant ?? 't1', priority: priority ?? 0, submittedAtMs: submittedAtMs ?? seq });
}
