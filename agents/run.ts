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

/**
 * What an agent is, from its configuration, before anything runs: its id, the nodes it serves (simulated, from
 * QY_NODE_FILE, or detected), its green source and its state folder (made and checked writable). Every file a
 * setting names is read here, so a start and a check (`--check`) fail alike, with the setting named.
 */
async function agentBasics(config: AgentConfig) {
  const green = config.greenFile ? fromSetting('QY_GREEN_FILE', () => fileGreen(config.greenFile!)) : constantGreen(config.greenShare);
  const simulated = config.simulate > 0;
  const specs = simulated ? simulatedNodeSpecs(config.simulate, config.simPrefix) : await localNodeSpecs(config);
  const agentId = config.agentId ?? (simulated ? `${config.simPrefix}-agent` : specs[0].id);
  const stateDir = usableStateDir(config.stateDir ?? join('.data', `agent-${agentId}`));
  return { green, simulated, specs, agentId, stateDir };
}

/** Builds and starts an agent from its configuration: one real node, or `simulate` virtual ones. */
export async function runAgent(config: AgentConfig, log: Logger): Promise<Agent> {
  const { green, simulated, specs, agentId, stateDir } = await agentBasics(config);
  let agent: Agent;
  if (simulated) {
    agent = new Agent({
      agentId,
      natsUrl: config.natsUrl,
      natsAuth: config,
      nodes: specs.map((spec) => ({ spec, telemetry: new SimTelemetry(spec, green) })),
      runner: new SimRunner(config.simDefaultDurationMs),
      stateDir,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
      enforcement: { cgroups: 'none', reason: 'simulated nodes: tasks only sleep', isolation: 'none' },
    });
  } else {
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
      stateDir,
      // Log files are reused only where every process of an ended task is killed with its cgroup.
      taskLogs: { keep: config.taskLogsKeep, maxBytes: config.taskLogsMaxBytes, maxTaskBytes: config.taskLogMaxBytes, reuseFiles: cg.manager !== undefined },
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
      enforcement,
      fence,
    });
  }
  await agent.start();
  log.info({ nodes: agent.nodeIds.length, simulated, green: green.describe() }, 'agent started');
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
  const { simulated, specs, agentId, stateDir } = await agentBasics(config);
  natsConnectionAuth(config); // reads the nkey seed file, if one is named
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
