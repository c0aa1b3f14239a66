/**
 * `npm start`: the whole system on one machine, on embedded defaults.
 * - a local nats-server with JetStream (data in .data/nats), unless QY_NATS_URL points elsewhere;
 * - a local PostgreSQL for the accounting archive (initdb into .data/pg), unless QY_DATABASE_URL points elsewhere;
 * - the scheduler's API on 127.0.0.1:8080 (QY_HTTP_PORT), with the web console at /ui/;
 * - a Prometheus on a free loopback port with the shipped rules (data in .data/prometheus), unless
 *   QY_PROMETHEUS_URL points at one: the console's charts come from it;
 * - one agent of virtual nodes: a small cluster of the three pools;
 * - a sample workload, then a live summary every two seconds. Ctrl-C stops everything.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadAgentConfig } from '../agents/config';
import { runAgent } from '../agents/run';
import { loadSchedulerConfig } from '../scheduler/config';
import { runScheduler } from '../scheduler/run';
import { startNatsServer, type LocalNatsServer } from '../harness/nats-server';
import { SchedulerApiError, SchedulerClient } from '../src/client';
import { startPrometheus, type LocalPrometheus } from '../harness/prometheus';
import { startPostgres, type LocalPostgres } from '../harness/postgres';
import { writeTenantsFile, type LocalTokens } from '../harness/tenants';
import { JOB_STATES, POOLS, type JobSpecInput } from '../src/protocol';
import { createLogger } from '../src/telemetry/logger';

const GiB = 1024 ** 3;
const VIRTUAL_NODES = 40;
const TRICKLE_MS = 3_000;

let nats: LocalNatsServer | undefined;
let natsUrl = process.env.QY_NATS_URL;
if (!natsUrl) {
  mkdirSync('.data/nats', { recursive: true });
  nats = await startNatsServer({ storeDir: '.data/nats' });
  natsUrl = nats.url;
}
let postgres: LocalPostgres | undefined;
let databaseUrl = process.env.QY_DATABASE_URL;
if (!databaseUrl) {
  mkdirSync('.data', { recursive: true });
  postgres = await startPostgres({ dataDir: '.data/pg' }).catch((err: Error) => {
    console.error(`could not start PostgreSQL for the accounting archive: ${err.message}`);
    void nats?.dispose();
    process.exit(1);
  });
  databaseUrl = postgres.url;
}
// Demo tenants: three paired cities and an operator, with tokens generated on the first run and kept in .data/.
// With QY_TENANTS_FILE the scheduler reads that file instead: the demo knows none of its tokens, so it prints
// none and submits no sample workload (it would be refused).
const DEMO_CITIES = ['beijing', 'shanghai', 'guangzhou'];
const ownTenantsFile = process.env.QY_TENANTS_FILE;
mkdirSync('.data', { recursive: true });
let tokens: LocalTokens | undefined;
if (ownTenantsFile) tokens = undefined;
else if (existsSync('.data/tenants.yaml') && existsSync('.data/demo-tokens.json')) tokens = JSON.parse(readFileSync('.data/demo-tokens.json', 'utf8')) as LocalTokens;
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
// The grid's carbon intensity: three recorded days of the British grid, replayed in a loop, so green deferral
// has better hours to wait for and the console's green page a forecast that moves (QY_CARBON_FILE to change).
const DEMO_CARBON_FILE = 'configs/green/gb-carbon-3days.csv';
const demoConfig = loadSchedulerConfig(process.env, { natsUrl, logLevel: process.env.QY_LOG_LEVEL ?? 'warn', logPretty: 'true', tenantsFile: ownTenantsFile ?? '.data/tenants.yaml', replicaId: process.env.QY_REPLICA_ID ?? 'demo', carbonFile: process.env.QY_CARBON_FILE ?? DEMO_CARBON_FILE, databaseUrl });
// Prometheus first, scraping where the scheduler will listen (it retries until the scheduler is up), so the
// scheduler can be told its URL: the console's charts are then live. Without it they show current values.
let prometheus: LocalPrometheus | undefined;
if (!demoConfig.prometheusUrl && demoConfig.httpPort !== 0) {
  mkdirSync('.data/prometheus', { recursive: true });
  const host = demoConfig.httpHost === '0.0.0.0' || demoConfig.httpHost === '::' ? '127.0.0.1' : demoConfig.httpHost;
  prometheus = await startPrometheus([`${host}:${demoConfig.httpPort}`], 5, { dataDir: '.data/prometheus' }).catch((err: Error) => {
    console.warn(`Prometheus did not start (${err.message.split('\n')[0]}): the console shows current values without charts over time`);
    return undefined;
  });
}
const schedulerConfig = { ...demoConfig, prometheusUrl: demoConfig.prometheusUrl ?? prometheus?.url };
const log = createLogger({ name: 'qy', level: schedulerConfig.logLevel, pretty: true });
const running = await runScheduler(schedulerConfig, log).catch((err: Error) => {
  console.error(`could not start the scheduler: ${err.message}${/EADDRINUSE/.test(err.message) ? ` (set QY_HTTP_PORT to a free port)` : ''}`);
  void nats?.dispose();
  void prometheus?.dispose();
  void postgres?.stop();
  process.exit(1);
});
const agent = await runAgent(loadAgentConfig(process.env, { natsUrl, simulate: VIRTUAL_NODES, simPrefix: 'demo', agentId: 'demo-virtual', stateDir: '.data/agent-demo-virtual', logLevel: schedulerConfig.logLevel }), log);

const url = running.url;
const prometheusLine = `Prometheus: ${schedulerConfig.prometheusUrl ?? 'none (set QY_PROMETHEUS_URL for charts over time)'}${prometheus ? ' (scrapes every 5 s with the rules of configs/prometheus; data in .data/prometheus)' : ''}`;
const access = tokens
  ? `Web console: ${url}/ui/
  sign in with the operator token: ${tokens.ops}
  (or a city's token below, to see what a tenant sees)
${prometheusLine}

Tenants (tokens generated for this demo, kept in .data/demo-tokens.json):
${DEMO_CITIES.map((c) => `  ${c.padEnd(10)} ${tokens![c]}`).join('\n')}
  operator   ${tokens.ops}

Try:
  export QY_TOKEN=${tokens.beijing}
  curl -s ${url}/v1/pools -H "authorization: Bearer $QY_TOKEN"
  curl -s "${url}/v1/jobs?state=running" -H "authorization: Bearer $QY_TOKEN"
  curl -s -X POST ${url}/v1/jobs -H "authorization: Bearer $QY_TOKEN" -H 'content-type: application/json' \\
       -d '{"pool":"intelligent","resources":{"cpuMillis":8000,"memBytes":${32 * GiB},"gpus":2},"durationSeconds":20}'
  npx qy --server ${url} list;  QY_TOKEN=${tokens.ops} npx qy --server ${url} nodes
  curl -s ${url}/docs/json        # OpenAPI`
  : `Web console: ${url}/ui/ (sign in with a token of ${ownTenantsFile})
${prometheusLine}

Tenants: from QY_TENANTS_FILE=${ownTenantsFile}. The demo holds none of their tokens, so it prints none and
submits no sample workload; submit with your own (QY_TOKEN=… npx qy --server ${url} submit …).`;
console.log(`
Qingyang scheduler is up: ${url}   (NATS ${natsUrl}${nats ? `, data in ${nats.storeDir}` : ''}; archive PostgreSQL ${postgres ? `on 127.0.0.1:${postgres.port}, data in .data/pg` : 'from QY_DATABASE_URL'})
${VIRTUAL_NODES} virtual nodes of the three pools${tokens ? '; a sample workload follows' : ''}.

${access}
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
const api = new SchedulerClient({ url });
async function submit(spec: JobSpecInput, city: string): Promise<void> {
  if (!tokens) return;
  await api.submit(spec, { token: tokens[city] }).catch((err: Error) => console.log(`submit ${spec.name} as ${city}: ${err instanceof SchedulerApiError ? `${err.statusCode} ${err.code}: ` : ''}${err.message}`));
}
if (tokens) {
  for (const [i, spec] of sample.entries()) await submit(spec, DEMO_CITIES[i % DEMO_CITIES.length]);
  console.log(`submitted ${sample.length} sample jobs; more follow every ${TRICKLE_MS / 1000} s\n`);
}

// Then a steady trickle (while fewer than 30 jobs wait), so the console's live pages and charts keep moving;
// the batch reports may wait up to 8 hours for greener power, and show on the console's green page.
const trickle: JobSpecInput[] = [
  { name: 'etl-stream', pool: 'general', resources: { cpuMillis: 8000, memBytes: 32 * GiB }, durationSeconds: 40 },
  { name: 'infer-svc', pool: 'intelligent', resources: { cpuMillis: 4000, memBytes: 16 * GiB, gpuMilli: 500 }, durationSeconds: 60 },
  { name: 'train-small', pool: 'intelligent', resources: { cpuMillis: 16_000, memBytes: 128 * GiB, gpus: 2 }, durationSeconds: 90 },
  { name: 'report-batch', pool: 'general', priorityClass: 'batch', resources: { cpuMillis: 4000, memBytes: 8 * GiB }, durationSeconds: 900, deferrable: { maxDelaySeconds: 8 * 3600 } },
  { name: 'etl-hourly', pool: 'general', resources: { cpuMillis: 16_000, memBytes: 64 * GiB }, durationSeconds: 75 },
  { name: 'cfd-small', pool: 'super', resources: { cpuMillis: 64_000, memBytes: 256 * GiB }, walltimeSeconds: 180, durationSeconds: 60 },
];
let trickled = 0;
const trickleTimer = setInterval(() => {
  if (!tokens) return;
  if (running.ops.pools().reduce((n, p) => n + p.queue.pending, 0) >= 30) return;
  const spec = trickle[trickled % trickle.length];
  void submit({ ...spec, name: `${spec.name}-${trickled}` }, DEMO_CITIES[trickled % DEMO_CITIES.length]);
  trickled++;
}, TRICKLE_MS);

function summary(): void {
  const counts = new Map<string, number>();
  for (const job of running.scheduler.store.table.jobs.values()) counts.set(`${job.spec.pool}/${job.state}`, (counts.get(`${job.spec.pool}/${job.state}`) ?? 0) + 1);
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
    clearInterval(trickleTimer);
    console.log('\nstopping…');
    void (async () => {
      // The scheduler first, so the agent's parting reports wait in the job log for its next start.
      await api.close();
      await running.close();
      await agent.stop();
      await nats?.stop();
      await prometheus?.dispose();
      await postgres?.stop();
      process.exit(0);
    })();
  });
}
