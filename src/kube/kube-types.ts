import { z } from 'zod';

/**
 * The parts of Kubernetes objects the bridge reads, as zod schemas: the API server's shapes (core/v1), not
 * ours, so they live here rather than in src/protocol. Unknown fields are dropped. Objects come both from
 * client-node's deserialiser (lists: dates as Date) and raw from watch streams (dates as strings), so no
 * schema here looks at a timestamp beyond its presence.
 */

const quantity = z.union([z.string(), z.number()]);
const resourceList = z.record(z.string(), quantity);
const stringMap = z.record(z.string(), z.string());

const objectMetaSchema = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().default(''),
  resourceVersion: z.string().optional(),
  labels: stringMap.nullish().transform((l) => l ?? {}),
  annotations: stringMap.nullish().transform((a) => a ?? {}),
  /** Set once the object is being deleted. */
  deletionTimestamp: z.unknown().optional(),
});

export const kubeNodeSchema = z.object({
  metadata: objectMetaSchema,
  spec: z
    .object({
      unschedulable: z.boolean().nullish(),
      taints: z.array(z.object({ key: z.string(), value: z.string().nullish(), effect: z.string() })).nullish(),
    })
    .default({}),
  status: z
    .object({
      allocatable: resourceList.nullish(),
      capacity: resourceList.nullish(),
      conditions: z.array(z.object({ type: z.string(), status: z.string() })).nullish(),
    })
    .default({}),
});
export type KubeNode = z.infer<typeof kubeNodeSchema>;

const containerSchema = z.object({
  name: z.string(),
  resources: z.object({ requests: resourceList.nullish(), limits: resourceList.nullish() }).nullish(),
});

const containerStatusSchema = z.object({
  name: z.string(),
  state: z
    .object({
      terminated: z.object({ exitCode: z.number().int(), signal: z.number().int().nullish(), reason: z.string().nullish() }).nullish(),
    })
    .nullish(),
});

export const kubePodSchema = z.object({
  metadata: objectMetaSchema.extend({ namespace: z.string() }),
  spec: z.object({
    schedulerName: z.string().nullish(),
    nodeName: z.string().nullish(),
    priorityClassName: z.string().nullish(),
    nodeSelector: stringMap.nullish(),
    activeDeadlineSeconds: z.number().int().nullish(),
    containers: z.array(containerSchema).default([]),
    initContainers: z.array(containerSchema.extend({ restartPolicy: z.string().nullish() })).nullish(),
    overhead: resourceList.nullish(),
    tolerations: z.array(z.object({ key: z.string().nullish(), operator: z.string().nullish(), value: z.string().nullish(), effect: z.string().nullish() })).nullish(),
  }),
  status: z
    .object({
      phase: z.string().nullish(),
      reason: z.string().nullish(),
      message: z.string().nullish(),
      conditions: z.array(z.object({ type: z.string(), status: z.string(), reason: z.string().nullish(), message: z.string().nullish() })).nullish(),
      containerStatuses: z.array(containerStatusSchema).nullish(),
    })
    .nullish()
    .transform((s) => s ?? {}),
});
export type KubePod = z.infer<typeof kubePodSchema>;

export const kubeNamespaceSchema = z.object({ metadata: objectMetaSchema });
export type KubeNamespace = z.infer<typeof kubeNamespaceSchema>;

/** Pods in these phases hold nothing on their node any more. */
export function isTerminalPhase(phase: string | null | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

/** `namespace/name`, the key pods are tracked by. */
export function podKey(pod: { metadata: { namespace: string; name: string } }): string {
  return `${pod.metadata.namespace}/${pod.metadata.name}`;
}
