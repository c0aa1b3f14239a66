import { join } from 'node:path';
import type { Logger } from '../src/telemetry/logger';
import { Agent } from './agent';
import { constantGreen, fileGreen } from './collectors/green';
import type { AgentConfig } from './config';
import { localNodeSpec, simulatedNodeSpecs } from './node-spec';
import { ProcessRunner } from './runners/process-runner';
import { SimRunner } from './runners/sim-runner';
import { HostTelemetry, SimTelemetry } from './telemetry';

/** Builds and starts an agent from its configuration: one real node, or `simulate` virtual ones. */
export async function runAgent(config: AgentConfig, log: Logger): Promise<Agent> {
  const green = config.greenFile ? fileGreen(config.greenFile) : constantGreen(config.greenShare);
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
      stateDir: config.stateDir ?? join('.data', `agent-${agentId}`),
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
    });
  } else {
    const spec = await localNodeSpec(config);
    const agentId = config.agentId ?? spec.id;
    const telemetry = new HostTelemetry(spec.ratedPowerWatts ?? config.ratedPowerWatts, green);
    await telemetry.init(Date.now());
    agent = new Agent({
      agentId,
      natsUrl: config.natsUrl,
      natsAuth: config,
      nodes: [{ spec, telemetry }],
      runner: new ProcessRunner(config.killGraceMs),
      stateDir: config.stateDir ?? join('.data', `agent-${agentId}`),
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
    });
  }
  await agent.start();
  log.info({ nodes: agent.nodeIds.length, simulated: config.simulate > 0, green: green.describe() }, 'agent started');
  return agent;
}
