/**
 * Generates the NATS authorization for the cluster: `npm run nats:auth -- --agents FILE --out DIR`.
 * Writes DIR/auth.conf (include it from the server config; see configs/nats/qingyang.conf) and one nkey seed
 * per user in DIR/seeds (give scheduler.nk to the scheduler, agent-<id>.nk to each agent, as
 * QY_NATS_NKEY_SEED_FILE). Seeds are secrets: the folder is created readable by its owner only.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { loadDataFile } from '../src/files';
import { nodeIdSchema } from '../src/protocol';
import { generateNatsAuthorization } from '../src/store/nats-auth';

const opts = new Command().requiredOption('--agents <file>', 'YAML: agents: [{agentId, nodeIds}]').requiredOption('--out <dir>', 'output folder').parse().opts();
const file = loadDataFile(opts.agents, z.object({ agents: z.array(z.object({ agentId: nodeIdSchema, nodeIds: z.array(nodeIdSchema).min(1) })) }));
const { config, users } = generateNatsAuthorization(file.agents);
mkdirSync(join(opts.out, 'seeds'), { recursive: true, mode: 0o700 });
writeFileSync(join(opts.out, 'auth.conf'), config);
for (const user of users) writeFileSync(join(opts.out, 'seeds', `${user.name}.nk`), `${user.seed}\n`, { mode: 0o600 });
console.log(`wrote ${join(opts.out, 'auth.conf')} and ${users.length} seeds in ${join(opts.out, 'seeds')}`);
