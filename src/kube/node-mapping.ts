import { LIMITS, dataClassSchema, labelKeySchema, labelValueSchema, nodeIdSchema, nodeSpecSchema, poolSchema, type NodeSpec, type Pool, type Taint } from '../protocol';
import type { KubeNode } from './kube-types';
import { resourcesOf, subtractResources, type KubeResources } from './requests';

/** Which node labels say what; from the bridge configuration. */
export interface NodeLabelKeys {
  poolLabel: string;
  /** Pool of nodes without the pool label; undefined: they are ignored. */
  defaultPool?: Pool;
  gpuModelLabel: string;
  /** The first of these labels present names the rack. */
  rackLabels: string[];
  zoneLabel: string;
  securityLabel: string;
}

/** Where NVIDIA's GPU feature discovery puts the model and the memory per GPU (MiB). */
const NVIDIA_PRODUCT_LABEL = 'nvidia.com/gpu.product';
const NVIDIA_MEMORY_LABEL = 'nvidia.com/gpu.memory';

/**
 * The scheduler node id of a Kubernetes node. Node names may contain dots, which are not allowed in a NATS
 * subject token; they never contain `_`, so dots become underscores and the mapping stays reversible.
 * Undefined for names longer than a node id may be.
 */
export function nodeIdOf(kubeNodeName: string): string | undefined {
  const id = kubeNodeName.replaceAll('.', '_');
  return nodeIdSchema.safeParse(id).success ? id : undefined;
}

/** The Kubernetes node name of a scheduler node id (inverse of nodeIdOf). */
export function kubeNodeNameOf(nodeId: string): string {
  return nodeId.replaceAll('_', '.');
}

/** Whether the node's Ready condition is True. */
export function isNodeReady(node: KubeNode): boolean {
  return (node.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** A node with `spec.unschedulable` (kubectl cordon) is cordoned in the scheduler too. */
export function isNodeUnschedulable(node: KubeNode): boolean {
  return node.spec.unschedulable === true;
}

/** The node's allocatable resources in the scheduler's units. */
export function nodeAllocatable(node: KubeNode): KubeResources {
  return resourcesOf(node.status.allocatable ?? node.status.capacity);
}

/**
 * The scheduler's spec of a Kubernetes node, or why it is not one: capacity is the node's allocatable,
 * allocatable what pods of other schedulers (`foreign`) leave of it.
 */
export function nodeSpecOf(node: KubeNode, foreign: KubeResources, keys: NodeLabelKeys, ratedPowerWatts: number): { spec: NodeSpec } | { ignored: string } {
  const labels = node.metadata.labels;
  const id = nodeIdOf(node.metadata.name);
  if (!id) return { ignored: `node name ${node.metadata.name} is longer than 63 characters` };
  const pool = labels[keys.poolLabel] ?? keys.defaultPool;
  if (pool === undefined) return { ignored: `no ${keys.poolLabel} label` };
  if (!poolSchema.safeParse(pool).success) return { ignored: `${keys.poolLabel}=${pool} is not a pool` };
  const capacity = clamp(nodeAllocatable(node));
  const allocatable = subtractResources(capacity, foreign);
  const gpuMemMiB = Number(labels[NVIDIA_MEMORY_LABEL]);
  const gpuMemBytes = Number.isFinite(gpuMemMiB) && gpuMemMiB > 0 ? Math.min(LIMITS.maxGpuMemBytes, gpuMemMiB * 1024 * 1024) : 0;
  const security = dataClassSchema.safeParse(labels[keys.securityLabel]);
  const rack = keys.rackLabels.map((k) => labels[k]).find((v) => v !== undefined) ?? '';
  const parsed = nodeSpecSchema.safeParse({
    id,
    pool,
    zone: labels[keys.zoneLabel] || 'default',
    rack: rack.slice(0, 63),
    labels: validLabels(labels),
    taints: taintsOf(node),
    capacity: { ...capacity, gpuMemBytes },
    allocatable: { ...allocatable, gpuMemBytes },
    // A GPU node without a model label still registers; jobs asking for a model will not match it.
    gpuModel: capacity.gpus > 0 ? (labels[keys.gpuModelLabel] ?? labels[NVIDIA_PRODUCT_LABEL] ?? 'unknown').slice(0, 32) : undefined,
    securityLevel: security.success ? security.data : 'internal',
    ratedPowerWatts,
  });
  if (!parsed.success) return { ignored: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
  return { spec: parsed.data };
}

/** Node labels the scheduler can hold (Kubernetes syntax, so nearly all of them). */
export function validLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (labelKeySchema.safeParse(k).success && labelValueSchema.safeParse(v).success) out[k] = v;
  return out;
}

/**
 * Taints the scheduler honours. NoExecute also repels new work (NoSchedule); the node-lifecycle taints
 * (node.kubernetes.io/*) are left out because readiness and cordoning reach the scheduler on their own.
 */
function taintsOf(node: KubeNode): Taint[] {
  const out: Taint[] = [];
  for (const t of node.spec.taints ?? []) {
    if (t.key.startsWith('node.kubernetes.io/')) continue;
    const effect = t.effect === 'PreferNoSchedule' ? 'PreferNoSchedule' : 'NoSchedule';
    if (labelKeySchema.safeParse(t.key).success && labelValueSchema.safeParse(t.value ?? '').success) out.push({ key: t.key, value: t.value ?? '', effect });
  }
  return out.slice(0, 32);
}

/** Keeps a node within what the scheduler accepts (a huge node registers at the limits rather than not at all). */
function clamp(r: KubeResources): KubeResources {
  const extended: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.extended).slice(0, LIMITS.maxExtendedKinds)) extended[k] = Math.min(v, LIMITS.maxExtended);
  return { cpuMillis: Math.min(r.cpuMillis, LIMITS.maxCpuMillis), memBytes: Math.min(r.memBytes, LIMITS.maxMemBytes), gpus: Math.min(r.gpus, LIMITS.maxGpus), extended };
}
