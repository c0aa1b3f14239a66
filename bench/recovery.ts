/**
 * Recovery benchmark: does a restart cost the same after a million jobs as after ten thousand?
 *
 *   npm run bench:recovery                                   # history of 10,000, 100,000 and 1,000,000 jobs
 *   npm run bench:recovery -- --steps 10000,50000 --api-jobs 50000
 *   npm run bench:recovery -- --steps 300000 --api-jobs 10000 --pause-ms 4000   # re-elections while archiving
 *
 * nats-server, PostgreSQL (the archive), the scheduler and an agent simulating the nodes run as separate
 * processes on loopback. History is pushed through the stack — up to `--api-jobs` through the HTTP API and
 * the agents, beyond that synthetic: jobs written straight to the job log (placed and ended), which the
 * scheduler takes in, archives, lets go and compacts like any other. At each step, once the archive has
 * caught up and a snapshot covers the history, the scheduler is killed with -9 and restarted; `readyMs` is
 * the time until it leads again, `rssMiB` its resident memory then. The final JSON line:
 * {"historyJobs","readyMs","rssMiB","archivedJobs","archiveLagMs","steps":[{"historyJobs","readyMs","rssMiB"}]}.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { openArchive } from '../src/archive';
import { startNatsServer } from '../harness/nats-server';
import { startPostgres } from '../harness/postgres';
import { spawnScheduler, spawnVirtualNodeAgent, type ChildService } from '../harness/processes';
import { writeTenantsFile } from '../harness/tenants';
import { waitUntil } from '../harness/wait';
import { freePort } from '../harness/ports';
import { scrapeMetric, syntheticJobId, waitHistorySettled, writeHistoryInRounds } from '../harness/history';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const opts = new Command()
  .option('--steps <list>', 'history sizes to restart at (jobs ever submitted)', '10000,100000,1000000')
  .option('--api-jobs <n>', 'history pushed through the API and agents; beyond it, written straight to the job log', '100000')
  .option('--rate <n>', 'API submissions per second', '1500')
  .option('--nodes <n>', 'simulated nodes', '50')
  .option('--pause-ms <ms>', 'after each synthetic round, SIGSTOP the scheduler this long (past its 2 s renew deadline: it steps down and is elected again while archiving); 0 for none', '0')
  .option('--retention-ms <ms>', 'QY_JOB_RETENTION_MS: how long finished jobs stay in memory (short, so history leaves it during the run)', '15000')
  .parse()
  .opts<{ steps: string; apiJobs: string; rate: string; nodes: string; pauseMs: string; retentionMs: string }>();

const steps = opts.steps.split(',').map(Number).sort((a, b) => a - b);
const apiJobs = Number(opts.apiJobs);
const say = (line: string) => process.stderr.write(`${line}\n`);

const [nats, pg] = await Promise.all([startNatsServer(), startPostgres({ durable: false })]);
const tenantsFile = join(mkdtempSync(join(tmpdir(), 'qy-recovery-')), 'tenants.yaml');
const tokens = writeTenantsFile(tenantsFile, { operators: ['ops'], tenants: [{ name: 'city-a', requestsPerSecond: 1_000_000 }] });
const port = await freePort();
const env = {
  QY_TENANTS_FILE: tenantsFile,
  QY_DATABASE_URL: pg.url,
  QY_JOB_RETENTION_MS: opts.retentionMs,
  QY_SNAPSHOT_INTERVAL_MS: '5000',
  QY_SNAPSHOT_EVERY_ENTRIES: '50000',
  QY_LEASE_DURATION_MS: '3000',
  QY_LEASE_RENEW_DEADLINE_MS: '2000',
  QY_LEASE_RETRY_MS: '500',
  QY_REPLICA_ID: 'recovery',
};
let scheduler: ChildService & { url: string } = await spawnScheduler(nats.url, { port, env });
const agent = spawnVirtualNodeAgent(nats.url, Number(opts.nodes), 'rec', { QY_HEARTBEAT_INTERVAL_MS: '1000' });
const url = scheduler.url;
const auth = { authorization: `Bearer ${tokens['city-a']}`, 'content-type': 'application/json' };

/** Whether the scheduler leads now: its memory figures mean nothing in the middle of a rebuild. */
async function leads(): Promise<boolean> {
  return (await fetch(`${url}/readyz?role=leader`).catch(() => undefined))?.ok ?? false;
}

function metric(name: string): Promise<number> {
  return scrapeMetric(url, name);
}

await waitUntil(async () => ((await fetch(`${url}/v1/pools`, { headers: auth }).then((r) => r.json())) as { items: { nodes: { ready: number } }[] }).items.reduce((n, p) => n + p.nodes.ready, 0) >= Number(opts.nodes) || undefined, 60_000, () => 'nodes did not register');

/** Submits `count` one-second jobs through the API at the configured rate (open model, bounded concurrency). */
async function pushThroughApi(count: number): Promise<void> {
  const gapMs = 1000 / Number(opts.rate);
  const started = Date.now();
  let inFlight = 0;
  for (let i = 0; i < count; i++) {
    const due = started + i * gapMs;
    while (Date.now() < due || inFlight >= 256) await new Promise((r) => setTimeout(r, inFlight >= 256 ? 2 : Math.max(0, due - Date.now())));
    inFlight++;
    void fetch(`${url}/v1/jobs`, { method: 'POST', headers: auth, body: JSON.stringify({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1 << 20 }, durationSeconds: 1 }) })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined)
      .finally(() => inFlight--);
  }
  await waitUntil(() => inFlight === 0 || undefined, 120_000);
}

/**
 * Freezes the scheduler in the middle of taking a round in (a long GC pause, a stalled VM): past its renew
 * deadline it steps down when it wakes, and is elected again in a new term with a rebuild, while the round
 * is still being archived. Whatever the timing, nothing may go missing from the archive.
 */
async function pause(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 200 + Math.floor(Math.random() * 800)));
  process.kill(scheduler.child.pid!, 'SIGSTOP');
  await new Promise((r) => setTimeout(r, ms));
  process.kill(scheduler.child.pid!, 'SIGCONT');
  pauses++;
}
let pauses = 0;

const historyTarget = { natsUrl: nats.url, urls: [url], ready: leads };

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}

const results: { historyJobs: number; readyMs: number; rssMiB: number }[] = [];
let history = 0;
for (const target of steps) {
  const viaApi = Math.max(0, Math.min(target, apiJobs) - history);
  const synthetic = target - history - viaApi;
  say(`history → ${target}: ${viaApi} through the API, ${synthetic} written to the log`);
  if (viaApi > 0) await pushThroughApi(viaApi);
  // The first general-pool node of the agent's virtual cluster (mixedCluster, prefixed by the agent).
  await writeHistoryInRounds(historyTarget, {
    count: synthetic,
    offset: history + viaApi,
    nodeId: 'rec-gen-00000',
    tenant: 'city-a',
    afterRound: async (written) => {
      say(`  … ${written} synthetic jobs written`);
      if (Number(opts.pauseMs) > 0) await pause(Number(opts.pauseMs));
    },
  });
  history = target;
  await waitHistorySettled(historyTarget, 2_000);
  await scheduler.kill9();
  const killedAt = Date.now();
  scheduler = await spawnScheduler(nats.url, { port, env });
  const readyMs = Date.now() - killedAt;
  // Resident memory once the start-up (the module loading, the rebuild's garbage) has settled.
  await new Promise((r) => setTimeout(r, 10_000));
  const step = { historyJobs: target, readyMs, rssMiB: rssMiB(scheduler.child.pid!) };
  say(`  ready ${readyMs} ms after kill -9, RSS ${step.rssMiB} MiB`);
  results.push(step);
}

const archive = openArchive({ url: pg.url });
const archivedJobs = (await archive.db.query<{ n: number }>('SELECT count(*)::int AS n FROM archived_jobs')).rows[0].n;
// Synthetic jobs the archive does not hold, and what the scheduler says of a few of them.
const archivedSynthetic = new Set((await archive.db.query<{ id: string }>("SELECT id FROM archived_jobs WHERE id LIKE 'h%'")).rows.map((r) => r.id));
const missing: string[] = [];
for (let i = Math.min(apiJobs, history); i < history; i++) {
  const jobId = syntheticJobId(i);
  if (!archivedSynthetic.has(jobId)) missing.push(jobId);
}
if (missing.length > 0) {
  say(`${missing.length} synthetic jobs are not in the archive; first ${missing[0]}, last ${missing[missing.length - 1]}`);
  for (const jobId of [...missing.slice(0, 3), ...missing.slice(-2)]) {
    const r = await fetch(`${url}/v1/jobs/${jobId}`, { headers: auth });
    say(`  ${jobId}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  }
}
await archive.close();
if (pauses > 0) say(`the scheduler was frozen ${pauses} times past its renew deadline`);
const archiveLagMs = Math.round((await metric('qy_archive_lag_seconds')) * 1000);
await scheduler.stop();
await agent.stop();
await Promise.all([nats.dispose(), pg.dispose()]);
const last = results[results.length - 1];
console.log(JSON.stringify({ historyJobs: last.historyJobs, readyMs: last.readyMs, rssMiB: last.rssMiB, archivedJobs, archiveLagMs, steps: results }));
