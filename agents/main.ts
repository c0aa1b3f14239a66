/**
 * The node agent: `npm run agent -- [--simulate N]`. Configuration from QY_* variables (see README); flags override.
 */
import { runProgram, stopOnSignals } from '../src/lifecycle';
import { Command } from 'commander';
import { createLogger } from '../src/telemetry/logger';
import { loadAgentConfig } from './config';
import { checkAgent, runAgent } from './run';

const program = new Command()
  .name('qy-agent')
  .description('Qingyang node agent: registers the node, sends heartbeats, runs assigned tasks')
  .option('--nats <url>', 'NATS servers (QY_NATS_URL)')
  .option('--agent-id <id>', 'agent id (QY_AGENT_ID)')
  .option('--node-id <id>', 'node id (QY_NODE_ID)')
  .option('--node-file <file>', 'YAML or JSON node spec to register (QY_NODE_FILE)')
  .option('--pool <pool>', 'pool of the detected node (QY_POOL)')
  .option('--simulate <n>', 'simulate N nodes of the three pools (QY_SIMULATE)')
  .option('--prefix <prefix>', 'id prefix of simulated nodes (QY_SIM_PREFIX)')
  .option('--state-dir <dir>', 'journal and logs (QY_AGENT_STATE_DIR)')
  .option('--green-share <x>', 'constant green share 0..1 (QY_GREEN_SHARE)')
  .option('--green-file <csv>', 'green share time series (QY_GREEN_FILE)')
  .option('--check', 'validate the configuration and the files it names, print the nodes it would register and what it can enforce, and exit: 0, or 2 with what to fix')
  .parse();

const flags = program.opts();
const configOf = () =>
  loadAgentConfig(process.env, {
    natsUrl: flags.nats,
    agentId: flags.agentId,
    nodeId: flags.nodeId,
    nodeFile: flags.nodeFile,
    pool: flags.pool,
    simulate: flags.simulate,
    simPrefix: flags.prefix,
    stateDir: flags.stateDir,
    greenShare: flags.greenShare,
    greenFile: flags.greenFile,
  });

if (flags.check) {
  const lines = await runProgram('qy-agent', () => checkAgent(configOf()));
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

const { log, agent } = await runProgram('qy-agent', async () => {
  const config = configOf();
  const log = createLogger({ name: 'qy-agent', level: config.logLevel });
  return { log, agent: await runAgent(config, log) };
});

stopOnSignals(log, () => agent.stop());
