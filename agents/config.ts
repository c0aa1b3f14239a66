import { hostname } from 'node:os';
import { z } from 'zod';
import { loadEnvConfig } from '../src/lifecycle';
import { NATS_AUTH_ENV, natsAuthConfigSchema } from '../src/store/nats-options';
import { LOG_LEVELS } from '../src/telemetry/logger';

/** A node id or agent id derived from the host name (lower-case, subject-safe). */
export function defaultNodeId(): string {
  return hostname().toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, 63) || 'node';
}

/**
 * The agent's configuration. Every setting has an environment variable; `qy-agent --help` shows the
 * command-line flags that override them.
 */
export const agentConfigSchema = natsAuthConfigSchema.extend({
  /** NATS servers, comma-separated. Env: QY_NATS_URL */
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  /** This agent's id: names its durable consumer. Env: QY_AGENT_ID (default: the node id, or <prefix>-agent when simulating) */
  agentId: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/).optional(),
  /** Node id (real mode). Env: QY_NODE_ID (default: host name) */
  nodeId: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/).default(defaultNodeId()),
  /** A YAML or JSON node spec to register instead of the detected one. Env: QY_NODE_FILE */
  nodeFile: z.string().optional(),
  /** Pool of the detected node. Env: QY_POOL */
  pool: z.enum(['general', 'intelligent', 'super']).default('general'),
  /** Zone of the detected node. Env: QY_ZONE */
  zone: z.string().default('default'),
  /** Rack of the detected node. Env: QY_RACK */
  rack: z.string().default(''),
  /** Labels of the detected node, as k=v,k=v. Env: QY_NODE_LABELS */
  labels: z.string().default(''),
  /** Highest data class the node may process. Env: QY_SECURITY_LEVEL */
  securityLevel: z.enum(['public', 'internal', 'sensitive', 'restricted']).default('internal'),
  /** Nameplate power, for the utilisation power model when no meter is readable. Env: QY_RATED_POWER_WATTS */
  ratedPowerWatts: z.coerce.number().int().min(1).default(400),
  /** Where the agent keeps its journal and task logs. Env: QY_AGENT_STATE_DIR (default .data/agent-<agentId>) */
  stateDir: z.string().optional(),
  /** Green-electricity share: a constant 0..1. Env: QY_GREEN_SHARE */
  greenShare: z.coerce.number().min(0).max(1).default(0.5),
  /** Green-electricity share from a CSV time series (time,share), overriding the constant. Env: QY_GREEN_FILE */
  greenFile: z.string().optional(),
  /** Simulate this many nodes (jobs sleep for their declared duration). Env: QY_SIMULATE */
  simulate: z.coerce.number().int().min(0).max(100_000).default(0),
  /** Prefix of simulated node ids. Env: QY_SIM_PREFIX */
  simPrefix: z.string().regex(/^[a-z0-9][a-z0-9-]{0,20}$/).default('sim'),
  /** Run time of a simulated task that declares no durationSeconds. Env: QY_SIM_DEFAULT_DURATION_MS */
  simDefaultDurationMs: z.coerce.number().int().min(0).default(1_000),
  /** Heartbeat interval before the scheduler tells its own. Env: QY_HEARTBEAT_INTERVAL_MS */
  heartbeatIntervalMs: z.coerce.number().int().positive().default(1_000),
  /** Time between SIGTERM and SIGKILL when a task exceeds its walltime. Env: QY_KILL_GRACE_MS */
  killGraceMs: z.coerce.number().int().min(0).default(5_000),
  /** Log level. Env: QY_LOG_LEVEL */
  logLevel: z.enum(LOG_LEVELS).default('info'),
});
export type AgentConfig = z.infer<typeof agentConfigSchema>;

export const AGENT_ENV: Record<keyof AgentConfig, string> = {
  ...NATS_AUTH_ENV,
  natsUrl: 'QY_NATS_URL',
  agentId: 'QY_AGENT_ID',
  nodeId: 'QY_NODE_ID',
  nodeFile: 'QY_NODE_FILE',
  pool: 'QY_POOL',
  zone: 'QY_ZONE',
  rack: 'QY_RACK',
  labels: 'QY_NODE_LABELS',
  securityLevel: 'QY_SECURITY_LEVEL',
  ratedPowerWatts: 'QY_RATED_POWER_WATTS',
  stateDir: 'QY_AGENT_STATE_DIR',
  greenShare: 'QY_GREEN_SHARE',
  greenFile: 'QY_GREEN_FILE',
  simulate: 'QY_SIMULATE',
  simPrefix: 'QY_SIM_PREFIX',
  simDefaultDurationMs: 'QY_SIM_DEFAULT_DURATION_MS',
  heartbeatIntervalMs: 'QY_HEARTBEAT_INTERVAL_MS',
  killGraceMs: 'QY_KILL_GRACE_MS',
  logLevel: 'QY_LOG_LEVEL',
};

/** Reads the agent configuration from the environment, with flag overrides; names every bad variable. */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof AgentConfig, unknown>> = {}): AgentConfig {
  return loadEnvConfig(agentConfigSchema, AGENT_ENV, env, overrides);
}
