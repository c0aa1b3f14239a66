import { z } from 'zod';
import { loadEnvConfig } from '../lifecycle';
import { poolSchema } from '../protocol';
import { NATS_AUTH_ENV, natsAuthConfigSchema } from '../store/nats-options';
import { LOG_LEVELS } from '../telemetry/logger';

/** The Kubernetes bridge's configuration (`npm run kube-bridge`): one variable per setting, all QY_ prefixed. */
export const kubeConfigSchema = natsAuthConfigSchema.extend({
  /** NATS servers, comma-separated. Env: QY_NATS_URL */
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  /** The scheduler's HTTP API: any replica (a write refused by one that does not lead the pool goes to the leader it names). Env: QY_SCHEDULER_URL */
  schedulerUrl: z.url().default('http://127.0.0.1:8080'),
  /** Operator token with `actAsTenants: true`: submits as tenants (X-Qy-Act-As), cordons nodes. Env: QY_KUBE_TOKEN */
  token: z.string().min(1),
  /** Kubeconfig file of the cluster; unset: the in-cluster service account, else ~/.kube/config (client-node's loadFromDefault). Env: QY_KUBECONFIG (default: in-cluster, else `~/.kube/config`) */
  kubeconfig: z.string().optional(),
  /** Cluster name, part of the default agent id. Env: QY_KUBE_CLUSTER */
  cluster: z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/).default('default'),
  /** The bridge's agent id (names its durable QY_ASSIGN consumer). Env: QY_KUBE_AGENT_ID (default: `kube-<cluster>`) */
  agentId: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/).optional(),
  /** Pods with this spec.schedulerName are ours. Env: QY_KUBE_SCHEDULER_NAME */
  schedulerName: z.string().min(1).default('qingyang-scheduler'),
  /** Node label naming the node's pool; also read on pods and namespaces. Env: QY_KUBE_POOL_LABEL */
  poolLabel: z.string().min(1).default('qingyang.cn/pool'),
  /** Pool of nodes without the pool label; unset: such nodes are ignored. Env: QY_KUBE_DEFAULT_POOL */
  defaultPool: poolSchema.optional(),
  /** Node label with the GPU model (falls back to nvidia.com/gpu.product). Env: QY_KUBE_GPU_MODEL_LABEL */
  gpuModelLabel: z.string().min(1).default('qingyang.cn/gpu-model'),
  /** Node labels with the rack, the first present wins (comma-separated). Env: QY_KUBE_RACK_LABELS */
  rackLabels: z.string().default('topology.kubernetes.io/rack,qingyang.cn/rack'),
  /** Node label with the zone. Env: QY_KUBE_ZONE_LABEL */
  zoneLabel: z.string().min(1).default('topology.kubernetes.io/zone'),
  /** Node label with the highest data class the node may process. Env: QY_KUBE_SECURITY_LABEL */
  securityLabel: z.string().min(1).default('qingyang.cn/security-level'),
  /** Namespace label naming the tenant its pods are submitted for. Env: QY_KUBE_TENANT_LABEL */
  tenantLabel: z.string().min(1).default('qingyang.cn/tenant'),
  /** Tenant of namespaces without the tenant label; unset: their pods are refused. Env: QY_KUBE_DEFAULT_TENANT */
  defaultTenant: z.string().optional(),
  /** Pod annotation with the priority class. Env: QY_KUBE_PRIORITY_ANNOTATION */
  priorityAnnotation: z.string().min(1).default('qingyang.cn/priority-class'),
  /** Known priority class names: a pod's spec.priorityClassName matching one is used. Env: QY_KUBE_PRIORITY_CLASSES */
  priorityClasses: z.string().default('urgent,normal,batch,best-effort'),
  /** How often pending jobs are looked at (pending reason, cancellation) and everything reconciled. Env: QY_KUBE_SYNC_INTERVAL_MS */
  syncIntervalMs: z.coerce.number().int().min(50).default(2_000),
  /** Nameplate power per node for the heartbeat power model. Env: QY_KUBE_RATED_POWER_WATTS */
  ratedPowerWatts: z.coerce.number().int().min(1).default(400),
  /** Green-electricity share reported for the nodes, 0..1. Env: QY_KUBE_GREEN_SHARE */
  greenShare: z.coerce.number().min(0).max(1).default(0.5),
  /** Log level. Env: QY_LOG_LEVEL */
  logLevel: z.enum(LOG_LEVELS).default('info'),
});
export type KubeBridgeConfig = z.infer<typeof kubeConfigSchema>;

export const KUBE_ENV: Record<keyof KubeBridgeConfig, string> = {
  ...NATS_AUTH_ENV,
  natsUrl: 'QY_NATS_URL',
  schedulerUrl: 'QY_SCHEDULER_URL',
  token: 'QY_KUBE_TOKEN',
  kubeconfig: 'QY_KUBECONFIG',
  cluster: 'QY_KUBE_CLUSTER',
  agentId: 'QY_KUBE_AGENT_ID',
  schedulerName: 'QY_KUBE_SCHEDULER_NAME',
  poolLabel: 'QY_KUBE_POOL_LABEL',
  defaultPool: 'QY_KUBE_DEFAULT_POOL',
  gpuModelLabel: 'QY_KUBE_GPU_MODEL_LABEL',
  rackLabels: 'QY_KUBE_RACK_LABELS',
  zoneLabel: 'QY_KUBE_ZONE_LABEL',
  securityLabel: 'QY_KUBE_SECURITY_LABEL',
  tenantLabel: 'QY_KUBE_TENANT_LABEL',
  defaultTenant: 'QY_KUBE_DEFAULT_TENANT',
  priorityAnnotation: 'QY_KUBE_PRIORITY_ANNOTATION',
  priorityClasses: 'QY_KUBE_PRIORITY_CLASSES',
  syncIntervalMs: 'QY_KUBE_SYNC_INTERVAL_MS',
  ratedPowerWatts: 'QY_KUBE_RATED_POWER_WATTS',
  greenShare: 'QY_KUBE_GREEN_SHARE',
  logLevel: 'QY_LOG_LEVEL',
};

/** Reads the bridge configuration from the environment (and overrides); names every bad variable. */
export function loadKubeBridgeConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof KubeBridgeConfig, unknown>> = {}): KubeBridgeConfig {
  return loadEnvConfig(kubeConfigSchema, KUBE_ENV, env, overrides);
}

/** The agent id the bridge registers its nodes with. */
export function bridgeAgentId(config: KubeBridgeConfig): string {
  return config.agentId ?? `kube-${config.cluster}`;
}
