import { accessSync, constants, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../src/telemetry/logger';
import { fromSetting } from '../src/lifecycle';
import type { Enforcement, NodeSpec } from '../src/protocol';
import { natsConnectionAuth } from '../src/store/nats-options';
import { Agent } from './agent';
import { CgroupManager } from './cgroups';
import { constantGreen, fileGreen } from './collectors/green';
import type { AgentConfig } from './config';
import { localNodeSpecs, simulatedNodeSpecs } from './node-spec';
import { ProcessRunner } from './runners/process-runner';
import { detectIsolation } from './sandbox';
import { SimRunner } from './runners/sim-runner';
import { HostTelemetry, SimTelemetry } from './telemetry';

/** Builds and starts an agent from its configuration: one real node, or `simulate` virtual ones. */
export async function runAgent(config: AgentConfig, log: Logger): Promise<Agent> {
  const stateDirOf = (agentId: string) => usableStateDir(config.stateDir ?? join('.data', `agent-${agentId}`));
  const green = config.greenFile ? fromSetting('QY_GREEN_FILE', () => fileGreen(config.greenFile!)) : constantGreen(config.greenShare);
  let agent: Agent;
  if (config.simulate > 0) {
    const agentId = config.agentId ?? `${config.simPrefix}-agent`;
    const specs = simulatedNodeSpecs(config.simulate, config.simPrefix);
    agent = new Agent({
      agentId,
      natsUrl: config.natsUrl,
      natsAuth: config,
      nodes: specs.map((spec) => ({ spec, telemetry: new SimTelemetry(spec, green) })),
      runner: new SimRunner(config.simDefaultDurationMs),
      stateDir: stateDirOf(agentId),
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
      enforcement: { cgroups: 'none', reason: 'simulated nodes: tasks only sleep', isolation: 'none' },
    });
  } else {
    const specs = await localNodeSpecs(config);
    const agentId = config.agentId ?? specs[0].id;
    const nodes = await Promise.all(
      specs.map(async (spec) => {
        const telemetry = new HostTelemetry(spec.ratedPowerWatts ?? config.ratedPowerWatts, green, { gpus: spec.capacity.gpus > 0 });
        await telemetry.init(Date.now());
        return { spec, telemetry };
      }),
    );
    const { cg, iso, enforcement, fence } = enforcementOf(config, specs);
    if (cg.manager) {
      const stale = await cg.manager.cleanStale();
      if (stale > 0) log.warn({ stale, base: cg.manager.base }, 'removed cgroups left by an earlier run (their processes killed)');
    }
    if (cg.manager) log.info({ cgroups: enforcement.cgroups, base: cg.manager.base, note: enforcement.reason }, 'tasks run in their own cgroups');
    else log.warn({ reason: enforcement.reason }, 'no cgroups: task CPU and memory limits are NOT enforced on this node');
    if (!iso.isolation) log.warn({ reason: iso.enforcement.isolationReason }, 'no isolation: sandbox and restricted tasks will fail on this node');
    agent = new Agent({
      agentId,
      natsUrl: config.natsUrl,
      natsAuth: config,
      nodes,
      runner: new ProcessRunner(config.killGraceMs, { cgroups: cg.manager, isolation: iso.isolation ?? null, pidsMax: config.taskPidsMax, start: config.taskStart, sandboxRoot: join(tmpdir(), `qy-sandbox-${agentId}`) }),
      stateDir: stateDirOf(agentId),
      // Log files are reused only where every process of an ended task is killed with its cgroup.
      taskLogs: { keep: config.taskLogsKeep, maxBytes: config.taskLogsMaxBytes, maxTaskBytes: config.taskLogMaxBytes, reuseFiles: cg.manager !== undefined },
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
      enforcement,
      fence,
    });
  }
  await agent.start();
  log.info({ nodes: agent.nodeIds.length, simulated: config.simulate > 0, green: green.describe() }, 'agent started');
  return agent;
}

/** The agent's state folder (journal, task logs), made if missing and checked writable: a ConfigError otherwise. */
function usableStateDir(dir: string): string {
  return fromSetting('QY_AGENT_STATE_DIR', () => {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return dir;
  });
}

/**
 * What this node can enforce, said at start and in every registration: never pretended. The cgroups of one
 * agent's nodes share one parent, named after its first node; opening it creates that parent and a probe
 * cgroup, nothing else (stale cgroups of an earlier run are the caller's to clean).
 */
function enforcementOf(config: AgentConfig, specs: NodeSpec[]) {
  const cg = config.cgroups === 'off' ? { enforcement: { cgroups: 'none' as const, reason: 'turned off (QY_CGROUPS=off)' } } : CgroupManager.open({ nodeId: specs[0].id, parent: config.cgroupParent, poolSize: config.cgroupPool, declaredCpuMillis: specs.reduce((sum, s) => sum + s.capacity.cpuMillis, 0) });
  const iso = detectIsolation({ uid: config.sandboxUid, gid: config.sandboxGid });
  const fence = { afterMs: config.fenceAfterMs, graceMs: config.killGraceMs };
  const enforcement: Enforcement = { ...cg.enforcement, ...iso.enforcement, fence };
  return { cg, iso, enforcement, fence };
}

/**
 * `qy-agent --check`: the configuration and the files it names read and validated, and what this agent would
 * register and enforce, without connecting or running anything (as `slurmd -C` prints a node's line). Lines
 * for stdout; throws the ConfigError a start would.
 */
export async function checkAgent(config: AgentConfig): Promise<string[]> {
  if (config.greenFile) fromSetting('QY_GREEN_FILE', () => fileGreen(config.greenFile!));
  natsConnectionAuth(config);
  const simulated = config.simulate > 0;
  const specs = simulated ? simulatedNodeSpecs(config.simulate, config.simPrefix) : await localNodeSpecs(config);
  const agentId = config.agentId ?? (simulated ? `${config.simPrefix}-agent` : specs[0].id);
  const stateDir = usableStateDir(config.stateDir ?? join('.data', `agent-${agentId}`));
  const lines = [`qy-agent: configuration OK (agent ${agentId}, ${specs.length} ${simulated ? 'simulated ' : ''}node${specs.length === 1 ? '' : 's'}, state in ${stateDir}; NATS ${config.natsUrl})`];
  for (const spec of specs.slice(0, 20)) {
    const a = spec.allocatable ?? spec.capacity;
    lines.push(`  node ${spec.id}: pool ${spec.pool}, ${a.cpuMillis / 1000} cores, ${Math.round(a.memBytes / 2 ** 20)} MiB, ${a.gpus} GPUs${spec.gpuModel ? ` (${spec.gpuModel})` : ''} allocatable; zone ${spec.zone}${spec.rack ? `, rack ${spec.rack}` : ''}`);
  }
  if (specs.length > 20) lines.push(`  … and ${specs.length - 20} more`);
  if (!simulated) {
    const { enforcement } = enforcementOf(config, specs);
    lines.push(`  cgroups: ${enforcement.cgroups}${enforcement.reason ? ` (${enforcement.reason})` : ''}`);
    lines.push(`  isolation: ${enforcement.isolation}${enforcement.isolationReason ? ` (${enforcement.isolationReason})` : ''}`);
    lines.push(`  fence: tasks stopped after ${config.fenceAfterMs} ms without NATS, ${config.killGraceMs} ms from SIGTERM to SIGKILL`);
  }
  return lines;
}
