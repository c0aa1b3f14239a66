/**
 * `npm start`: the whole system on one machine, on embedded defaults.
 * - a local nats-server with JetStream (data in .data/nats), unless QY_NATS_URL points elsewhere;
 * - the scheduler's API on 127.0.0.1:8080 (QY_HTTP_PORT);
 * - one agent simulating a small cluster of the three pools;
 * - a sample workload, then a live summary every two seconds. Ctrl-C stops everything.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadAgentConfig } from '../agents/config';
import { runAgent } from '../agents/run';
import { loadSchedulerConfig } from '../scheduler/config';
import { runScheduler } from '../scheduler/run';
import { startNatsServer, type LocalNatsServer } from '../src/local/nats-server';
import { writeTenantsFile, type LocalTokens } from '../src/local/tenants';
import { JOB_STATES, POOLS, type JobSpecInput } from '../src/protocol';
import { createLogger } from '../src/telemetry/logger';

const GiB = 1024 ** 3;
const SIMULATED_NODES = 40;

let nats: LocalNatsServer | undefined;
let natsUrl = process.env.QY_NATS_URL;
if (!natsUrl) {
  mkdirSync('.data/nats', { recursive: true });
  nats = await startNatsServer({ storeDir: '.data/nats' });
  natsUrl = nats.url;
}
// Demo tenants: three paired cities and an operator, with tokens generated on the first run and kept in .data/.
const DEMO_CITIES = ['beijing', 'shanghai', 'guangzhou'];
mkdirSync('.data', { recursive: true });
let tokens: LocalTokens;
if (existsSync('.data/tenants.yaml') && existsSync('.data/demo-tokens.json')) tokens = JSON.parse(readFileSync('.data/demo-tokens.json', 'utf8')) as LocalTokens;
else {
  tokens = writeTenantsFile('.data/tenants.yaml', {
    operators: ['ops'],
    tenants: [
      { name: 'beijing', displayName: 'Beijing Municipal Big Data Centre', weight: 2, requestsPerSecond: 1_000 },
      { name: 'shanghai', displayName: 'Shanghai Meteorological Service', weight: 1, requestsPerSecond: 1_000, quotas: { intelligent: { gpus: 48 } } },
      { name: 'guangzhou', displayName: 'Guangzhou Transport Bureau', weight: 1, requestsPerSecond: 1_000 },
    ],
  });
  writeFileSync('.data/demo-tokens.json', JSON.stringify(tokens), { mode: 0o600 });
}
// A fixed replica id: after a hard stop, the next `npm start` takes its own lease back at once.
const schedulerConfig = loadSchedulerConfig(process.env, { natsUrl, logLevel: process.env.QY_LOG_LEVEL ?? 'warn', logPretty: 'true', tenantsFile: process.env.QY_TENANTS_FILE ?? '.data/tenants.yaml', replicaId: process.env.QY_REPLICA_ID ?? 'demo' });
const log = createLogger({ name: 'qy', level: schedulerConfig.logLevel, pretty: true });
const running = await runScheduler(schedulerConfig, log).catch((err: Error) => {
  console.error(`could not start the scheduler: ${err.message}${/EADDRINUSE/.test(err.message) ? ` (set QY_HTTP_PORT to a free port)` : ''}`);
  void nats?.dispose();
  process.exit(1);
});
const agent = await runAgent(loadAgentConfig(process.env, { natsUrl, simulate: SIMULATED_NODES, simPrefix: 'demo', agentId: 'demo-sim', stateDir: '.data/agent-demo-sim', logLevel: schedulerConfig.logLevel }), log);

const url = running.url;
console.log(`
Qingyang scheduler is up: ${url}   (NATS ${natsUrl}${nats ? `, data in ${nats.storeDir}` : ''})
${SIMULATED_NODES} simulated nodes of the three pools; a sample workload follows.

Tenants (tokens generated for this demo, kept in .data/demo-tokens.json):
${DEMO_CITIES.map((c) => `  ${c.padEnd(10)} ${tokens[c]}`).join('\n')}
  operator   ${tokens.ops}

Try:
  export QY_TOKEN=${tokens.beijing}
  curl -s ${url}/v1/pools -H "authorization: Bearer $QY_TOKEN"
  curl -s "${url}/v1/jobs?state=running" -H "authorization: Bearer $QY_TOKEN"
  curl -s -X POST ${url}/v1/jobs -H "authorization: Bearer $QY_TOKEN" -H 'content-type: application/json' \\
       -d '{"pool":"intelligent","resources":{"cpuMillis":8000,"memBytes":${32 * GiB},"gpus":2},"durationSeconds":20}'
  npx qy --server ${url} list;  QY_TOKEN=${tokens.ops} npx qy --server ${url} nodes
  curl -s ${url}/docs/json        # OpenAPI
Ctrl-C stops everything.
`);

await new Promise((r) => setTimeout(r, 1_500));
const sample: JobSpecInput[] = [];
for (let i = 0; i < 16; i++) sample.push({ name: `etl-${i}`, pool: 'general', resources: { cpuMillis: (1 + (i % 4)) * 4000, memBytes: 16 * GiB }, durationSeconds: 5 + (i % 5) * 3 });
for (let i = 0; i < 10; i++) sample.push({ name: `train-${i}`, pool: 'intelligent', resources: { cpuMillis: 16_000, memBytes: 128 * GiB, gpus: [1, 2, 4, 8][i % 4] }, durationSeconds: 8 + i * 2 });
for (let i = 0; i < 6; i++) sample.push({ name: `infer-${i}`, pool: 'intelligent', resources: { cpuMillis: 2000, memBytes: 8 * GiB, gpuMilli: 250 }, durationSeconds: 15 });
sample.push({ name: 'weather-mpi', pool: 'super', priorityClass: 'urgent', tasks: 4, resources: { cpuMillis: 64_000, memBytes: 256 * GiB }, walltimeSeconds: 60, durationSeconds: 12 });
sample.push({ name: 'cfd-gang', pool: 'super', tasks: 2, resources: { cpuMillis: 64_000, memBytes: 256 * GiB }, walltimeSeconds: 60, durationSeconds: 20 });
sample.push({ name: 'bad-input-data', pool: 'general', resources: { cpuMillis: 1000, memBytes: GiB }, durationSeconds: 3, env: { QY_SIM_EXIT_CODE: '2' } });
sample.push({ name: 'llm-finetune', pool: 'intelligent', tasks: 4, resources: { cpuMillis: 64_000, memBytes: 512 * GiB, gpus: 8 }, constraints: { gpuModels: ['A800'] }, durationSeconds: 25 });
for (const [i, spec] of sample.entries()) {
  const city = DEMO_CITIES[i % DEMO_CITIES.length];
  const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[city]}` }, body: JSON.stringify(spec) });
  if (!res.ok) console.log(`submit ${spec.name} as ${city}: ${res.status} ${await res.text()}`);
}
console.log(`submitted ${sample.length} sample jobs\n`);

function summary(): void {
  const counts = new Map<string, number>();
  for (const job of running.scheduler.table.jobs.values()) counts.set(`${job.spec.pool}/${job.state}`, (counts.get(`${job.spec.pool}/${job.state}`) ?? 0) + 1);
  const header = `${'pool'.padEnd(12)}${JOB_STATES.map((s) => s.padStart(11)).join('')}`;
  const rows = POOLS.map((pool) => `${pool.padEnd(12)}${JOB_STATES.map((s) => String(counts.get(`${pool}/${s}`) ?? 0).padStart(11)).join('')}`);
  const pools = running.ops.pools().map((p) => `${p.pool}: ${Math.round((100 * p.allocated.cpuMillis) / Math.max(1, p.capacity.cpuMillis))}% cpu${p.capacity.gpus ? `, ${Math.round((100 * p.allocated.gpuMilli) / (p.capacity.gpus * 1000))}% gpu` : ''}`);
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${pools.join(' | ')}\n${header}\n${rows.join('\n')}\n`);
}
const timer = setInterval(summary, 2_000);
summary();

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    console.log('\nstopping…');
    void (async () => {
      // The scheduler first, so the agent's parting reports wait in the job log for its next start.
      await running.close();
      await agent.stop();
      await nats?.stop();
      process.exit(0);
    })();
  });
}
