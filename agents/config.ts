import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError, loadEnvConfig } from '../src/lifecycle';
import { FENCE_SLACK_MS, fenceIsSafe } from '../src/protocol';
import { NATS_AUTH_ENV, natsAuthConfigSchema } from '../src/store/nats-options';
import { LOG_LEVELS } from '../src/telemetry/logger';
import { DEFAULT_POOL_SIZE } from './cgroups';
import { DEFAULT_TASK_LOG_MAX_BYTES, DEFAULT_TASK_LOGS_KEEP, DEFAULT_TASK_LOGS_MAX_BYTES } from './task-logs';

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
  /** This agent's id: names its durable consumer. Env: QY_AGENT_ID (default: the node id, or `<prefix>-agent` when simulating) */
  agentId: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/).optional(),
  /** Node id (real mode). Env: QY_NODE_ID (default: host name) */
  nodeId: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/).default(defaultNodeId()),
  /** A YAML or JSON node spec to register instead of the detected one, or a list of them (one agent, several nodes). Env: QY_NODE_FILE */
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
  /** Where the agent keeps its journal and task logs. Env: QY_AGENT_STATE_DIR (default: `.data/agent-<agentId>`) */
  stateDir: z.string().optional(),
  /** Logs of ended tasks kept in the state folder: past it the oldest goes, its file reused for the next task's log where tasks run in cgroups (0: a log goes when its task ends). Env: QY_TASK_LOGS_KEEP */
  taskLogsKeep: z.coerce.number().int().min(0).default(DEFAULT_TASK_LOGS_KEEP),
  /** Bytes of ended tasks' logs kept in the state folder (10 GiB): past it the oldest go. Env: QY_TASK_LOGS_MAX_BYTES */
  taskLogsMaxBytes: z.coerce.number().int().min(0).default(DEFAULT_TASK_LOGS_MAX_BYTES),
  /** Bytes a running task's log may reach (256 MiB): past it, checked at each heartbeat, its earlier output is dropped and a line says so. Env: QY_TASK_LOG_MAX_BYTES */
  taskLogMaxBytes: z.coerce.number().int().min(1024).default(DEFAULT_TASK_LOG_MAX_BYTES),
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
  /** Without confirmed contact with NATS this long, the agent stops its tasks (fencing; real nodes). Env: QY_FENCE_AFTER_MS */
  fenceAfterMs: z.coerce.number().int().positive().default(4_000),
  /** The scheduler's QY_DOWN_AFTER_MS: the fence must fire before it (fence + kill grace + 500 ms ≤ it). Env: QY_DOWN_AFTER_MS */
  downAfterMs: z.coerce.number().int().positive().default(10_000),
  /** Per-task cgroups: `auto` uses them where they can be created (and says so where not), `off` never. Env: QY_CGROUPS */
  cgroups: z.enum(['auto', 'off']).default('auto'),
  /** Parent of the agent's cgroups in each hierarchy: <hierarchy>/<parent>/<nodeId>/<task>. Env: QY_CGROUP_PARENT */
  cgroupParent: z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/).default('qingyang'),
  /** Emptied task cgroups kept for the next tasks instead of removed and made again (cgroup v1; 0: one new cgroup per task). Env: QY_CGROUP_POOL */
  cgroupPool: z.coerce.number().int().min(0).default(DEFAULT_POOL_SIZE),
  /** Processes a task may have at once (pids limit). Env: QY_TASK_PIDS_MAX */
  taskPidsMax: z.coerce.number().int().min(16).default(4_096),
  /** How tasks start: `launcher` (the default where /usr/bin/perl exists: a small long-lived Perl process, agents/runners/launcher.pl, forks each task, which joins its cgroup and opens its log before it execs) or `spawn` (the agent forks each task itself, a shell joining the cgroup). Env: QY_TASK_START */
  taskStart: z.enum(['launcher', 'spawn']).optional(),
  /** Unprivileged uid that sandbox and restricted tasks run as (agent running as root). Env: QY_SANDBOX_UID */
  sandboxUid: z.coerce.number().int().min(1).default(65_534),
  /** Unprivileged gid that sandbox and restricted tasks run as. Env: QY_SANDBOX_GID */
  sandboxGid: z.coerce.number().int().min(1).default(65_534),
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
  taskLogsKeep: 'QY_TASK_LOGS_KEEP',
  taskLogsMaxBytes: 'QY_TASK_LOGS_MAX_BYTES',
  taskLogMaxBytes: 'QY_TASK_LOG_MAX_BYTES',
  greenShare: 'QY_GREEN_SHARE',
  greenFile: 'QY_GREEN_FILE',
  simulate: 'QY_SIMULATE',
  simPrefix: 'QY_SIM_PREFIX',
  simDefaultDurationMs: 'QY_SIM_DEFAULT_DURATION_MS',
  heartbeatIntervalMs: 'QY_HEARTBEAT_INTERVAL_MS',
  killGraceMs: 'QY_KILL_GRACE_MS',
  fenceAfterMs: 'QY_FENCE_AFTER_MS',
  downAfterMs: 'QY_DOWN_AFTER_MS',
  cgroups: 'QY_CGROUPS',
  cgroupParent: 'QY_CGROUP_PARENT',
  cgroupPool: 'QY_CGROUP_POOL',
  taskPidsMax: 'QY_TASK_PIDS_MAX',
  taskStart: 'QY_TASK_START',
  sandboxUid: 'QY_SANDBOX_UID',
  sandboxGid: 'QY_SANDBOX_GID',
  logLevel: 'QY_LOG_LEVEL',
};

/** Reads the agent configuration from the environment, with flag overrides; names every bad variable. */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof AgentConfig, unknown>> = {}): AgentConfig {
  const config = loadEnvConfig(agentConfigSchema, AGENT_ENV, env, overrides);
  // A real node fences itself before the scheduler requeues its work; the scheduler checks it again at registration.
  if (config.simulate === 0 && !fenceIsSafe({ afterMs: config.fenceAfterMs, graceMs: config.killGraceMs }, config.downAfterMs)) {
    throw new ConfigError(
      `invalid configuration: QY_FENCE_AFTER_MS (${config.fenceAfterMs}) + QY_KILL_GRACE_MS (${config.killGraceMs}) + ${FENCE_SLACK_MS} ms must not exceed the scheduler's QY_DOWN_AFTER_MS (${config.downAfterMs}): the fence must stop the tasks before the scheduler runs them elsewhere`,
    );
  }
  return config;
}
