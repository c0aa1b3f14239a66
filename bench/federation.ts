/**
 * Federation benchmark: three sites on this machine (a nats-server each, joined by gateways; a scheduler and
 * an agent of virtual nodes each, in this process), one city's burst against one site (qy-a, the smallest),
 * run twice: with the sites isolated (no federation: everything waits at qy-a) and federated (the router
 * sends work to qy-b and qy-c where the data class allows).
 *
 *   npm run bench:federation                       # 120 jobs of 4 cores for 2 s, 10% restricted, 10% sensitive
 *   npm run bench:federation -- --jobs 60 --job-seconds 3
 *   npm run bench:federation -- --kill             # federated run: qy-b's scheduler stopped mid-burst, restarted 3 s later
 *
 * Every job but the restricted ones reads a 1 GB dataset registered at qy-a. Waits are start minus submission,
 * as the submitting site reports them (jobs routed away: as the running site reports them). Classification
 * violations: a restricted job that ran off qy-a, a sensitive one at qy-c (not certified). Lost: a job that did
 * not succeed. Duplicates: a job that started at two sites. The final line is JSON:
 * {"sites","jobs","federatedMeanWaitS","isolatedMeanWaitS","routedShare","crossSiteBytes","classificationViolations","lost","duplicates"}.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Agent } from '../agents/agent';
import { constantGreen } from '../agents/collectors/green';
import { SimRunner } from '../agents/runners/sim-runner';
import { SimTelemetry } from '../agents/telemetry';
import { startNatsFederation, type LocalNatsFederation } from '../harness/nats-server';
import { writeTempTenantsFile } from '../harness/stack';
import { waitUntil } from '../harness/wait';
import { loadSchedulerConfig } from '../scheduler/config';
import { runScheduler, type RunningScheduler } from '../scheduler/run';
import { SchedulerClient } from '../src/client';
import { nodeSpecSchema, type DataClass, type JobView } from '../src/protocol';
import { createLogger } from '../src/telemetry/logger';

const program = new Command()
  .name('bench:federation')
  .option('--jobs <n>', 'jobs in the burst', '120')
  .option('--job-seconds <s>', 'run time of each job', '2')
  .option('--home-nodes <n>', '8-core nodes at qy-a', '2')
  .option('--other-nodes <n>', '8-core nodes at qy-b and at qy-c', '6')
  .option('--kill', "federated run: stop qy-b's scheduler mid-burst and start it again 3 s later")
  .option('--kill-nats', "federated run: kill -9 qy-b's nats-server mid-burst (the site drops out: its scheduler, agent and gateway lose NATS) and start it again 8 s later")
  .parse();
const opts = program.opts();
const JOBS = Number(opts.jobs);
const JOB_SECONDS = Number(opts.jobSeconds);
const SITES = ['qy-a', 'qy-b', 'qy-c'];
const INPUT_BYTES = 1e9;
const GiB = 1024 ** 3;
const log = createLogger({ name: 'bench:federation', level: 'info', pretty: true });
const quiet = createLogger({ name: 'bench:federation', level: process.env.QY_BENCH_LOG_LEVEL ?? 'silent' });

const CERTIFIED: Record<string, DataClass[]> = { 'qy-a': ['public', 'internal', 'sensitive', 'restricted'], 'qy-b': ['public', 'internal', 'sensitive'], 'qy-c': ['public', 'internal'] };

function federationFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'qy-bench-fed-')), 'federation.json');
  writeFileSync(
    file,
    JSON.stringify({
      sites: SITES.map((name) => ({ name, pools: ['general'], certified: CERTIFIED[name], green: { share: 0.5, carbonGPerKwh: 550 } })),
      links: [
        { between: ['qy-a', 'qy-b'], bandwidthGbps: 10, latencyMs: 10 },
        { between: ['qy-a', 'qy-c'], bandwidthGbps: 10, latencyMs: 20 },
        { between: ['qy-b', 'qy-c'], bandwidthGbps: 10, latencyMs: 15 },
      ],
    }),
  );
  return file;
}

interface Outcome {
  meanWaitS: number;
  routed: number;
  crossSiteBytes: number;
  violations: number;
  lost: number;
  duplicates: number;
  /** Jobs a silent site gave back and the router sent elsewhere. */
  rerouted: number;
}

/** One run: fresh NATS, schedulers and agents; the burst at qy-a; every job followed to its end. */
async function run(federated: boolean): Promise<Outcome> {
  const nats: LocalNatsFederation = await startNatsFederation(SITES);
  const tenants = writeTempTenantsFile({ operators: ['ops'], tenants: [{ name: 'city-a', requestsPerSecond: 1_000_000 }] }, 'bench-fed');
  const fedFile = federationFile();
  const schedulers = new Map<string, RunningScheduler>();
  const agents: Agent[] = [];
  const configOf = (site: string) =>
    loadSchedulerConfig({}, {
      natsUrl: nats.site(site).url,
      httpPort: 0,
      tenantsFile: tenants.file,
      heartbeatIntervalMs: 500,
      suspectAfterMs: 3_000,
      downAfterMs: 6_000,
      leaseDurationMs: 3_000,
      leaseRenewDeadlineMs: 2_000,
      leaseRetryMs: 500,
      ...(federated ? { site, federationFile: fedFile, federationNatsUrl: nats.site(site).fedUrl, federationNatsUser: nats.site(site).fedUser, federationNatsPassword: nats.site(site).fedPassword, federationSummaryIntervalMs: 500, federationSiteDownAfterMs: 2_500 } : {}),
    });
  try {
    for (const site of SITES) schedulers.set(site, await runScheduler(configOf(site), quiet));
    for (const site of SITES) {
      const count = site === 'qy-a' ? Number(opts.homeNodes) : Number(opts.otherNodes);
      const level = CERTIFIED[site].at(-1)!;
      const specs = Array.from({ length: count }, (_, i) => nodeSpecSchema.parse({ id: `${site}-n${i}`, pool: 'general', zone: site, rack: 'r1', capacity: { cpuMillis: 8000, memBytes: 32 * GiB }, ratedPowerWatts: 400, securityLevel: level }));
      const agent = new Agent({ agentId: `${site}-agent`, natsUrl: nats.site(site).url, nodes: specs.map((spec) => ({ spec, telemetry: new SimTelemetry(spec, constantGreen(0.5)) })), runner: new SimRunner(1_000), stateDir: mkdtempSync(join(tmpdir(), `qy-bench-${site}-`)), heartbeatIntervalMs: 500, log: quiet });
      await agent.start();
      agents.push(agent);
      await waitUntil(async () => (schedulers.get(site)!.scheduler.store.cluster.nodesOf('general').filter((n) => n.state === 'ready').length === count ? true : undefined), 30_000, () => `${site}: nodes not ready`);
    }
    if (federated) await waitUntil(async () => (SITES.every((s) => schedulers.get(s)!.scheduler.federation!.summariesNow().size === SITES.length) ? true : undefined), 30_000, () => 'sites did not hear each other');

    const client = (site: string) => new SchedulerClient({ url: schedulers.get(site)!.url, token: tenants.tokens['city-a'] });
    const home = client('qy-a');
    const register = async (classification: DataClass) => {
      return (await home.registerDataset({ name: `input-${classification}`, site: 'qy-a', sizeBytes: INPUT_BYTES, classification, contentHash: `sha256:${'0'.repeat(64)}` })).id;
    };
    const inputOf: Record<string, string> = { internal: await register('internal'), sensitive: await register('sensitive') };

    // The burst: every 10th job restricted, every 10th (offset 5) reads sensitive data, the rest internal data.
    const classOf = (i: number): DataClass => (i % 10 === 0 ? 'restricted' : i % 10 === 5 ? 'sensitive' : 'internal');
    const submitted: { id: string; dataClass: DataClass }[] = [];
    let killed: Promise<void> | undefined;
    for (let i = 0; i < JOBS; i++) {
      const dataClass = classOf(i);
      const spec = { name: `burst-${i}`, pool: 'general' as const, resources: { cpuMillis: 4000, memBytes: GiB }, durationSeconds: JOB_SECONDS, dataClass: dataClass === 'restricted' ? ('restricted' as const) : ('internal' as const), ...(dataClass === 'restricted' ? {} : { inputs: [inputOf[dataClass]] }) };
      submitted.push({ id: (await home.submit(spec)).id, dataClass });
      if (federated && opts.killNats && i === Math.floor(JOBS / 2)) {
        log.info("kill -9 of qy-b's nats-server mid-burst");
        const server = nats.site('qy-b').server;
        process.kill(server.pid!, 'SIGKILL');
        killed = (async () => {
          await new Promise((r) => setTimeout(r, 8_000));
          await server.restart();
          log.info("qy-b's nats-server is back");
        })();
      }
      if (federated && opts.kill && i === Math.floor(JOBS / 2)) {
        log.info("stopping qy-b's scheduler mid-burst");
        const b = schedulers.get('qy-b')!;
        killed = (async () => {
          await b.close();
          await new Promise((r) => setTimeout(r, 3_000));
          schedulers.set('qy-b', await runScheduler(configOf('qy-b'), quiet));
          log.info("qy-b's scheduler is back");
        })();
      }
    }
    await killed;

    // Follow every job to its end, as the submitting site shows it.
    const final = new Map<string, JobView>();
    const deadline = Date.now() + (JOBS * JOB_SECONDS * 1000) / (2 * Number(opts.homeNodes)) + 120_000;
    while (final.size < submitted.length && Date.now() < deadline) {
      for (const { id } of submitted) {
        if (final.has(id)) continue;
        const view = await home.job(id).catch(() => undefined);
        if (view && ['succeeded', 'failed', 'cancelled'].includes(view.state)) final.set(id, view);
      }
      await new Promise((r) => setTimeout(r, 500));
    }

    let waitS = 0;
    let waited = 0;
    const out: Outcome = { meanWaitS: 0, routed: 0, crossSiteBytes: 0, violations: 0, lost: 0, duplicates: 0, rerouted: 0 };
    for (const { id, dataClass } of submitted) {
      const view = final.get(id);
      if (!view || view.state !== 'succeeded') {
        out.lost++;
        continue;
      }
      const site = view.site ?? 'qy-a';
      if (view.route?.includes('gave the job back')) out.rerouted++;
      if (site !== 'qy-a') {
        out.routed++;
        if (dataClass !== 'restricted') out.crossSiteBytes += INPUT_BYTES;
      }
      if (!CERTIFIED[site].includes(dataClass) || (dataClass === 'restricted' && site !== 'qy-a')) out.violations++;
      if (view.startedAt) {
        waitS += (Date.parse(view.startedAt) - Date.parse(view.submittedAt)) / 1000;
        waited++;
      }
      // Started at more than one site: each site asked directly for its own record of the job.
      let startedAt = 0;
      for (const s of SITES) {
        const local = await client(s).job(id).catch(() => undefined);
        if (local?.startedAt && (local.site ?? 'qy-a') === s) startedAt++;
      }
      if (startedAt > 1) out.duplicates++;
    }
    out.meanWaitS = waited > 0 ? waitS / waited : 0;
    return out;
  } finally {
    for (const a of agents) await a.stop().catch(() => undefined);
    for (const s of schedulers.values()) await s.close().catch(() => undefined);
    await nats.dispose();
  }
}

process.stderr.write(`federation: ${JOBS} jobs of 4 cores for ${JOB_SECONDS} s at qy-a (${opts.homeNodes} nodes; qy-b and qy-c ${opts.otherNodes} each)…\n`);
log.info('isolated sites');
const isolated = await run(false);
log.info({ meanWaitS: isolated.meanWaitS.toFixed(2) }, 'isolated done; federated sites');
const federated = await run(true);

const r2 = (x: number) => Math.round(x * 100) / 100;
console.log(`
mean wait, isolated sites          ${isolated.meanWaitS.toFixed(2)} s
mean wait, federated               ${federated.meanWaitS.toFixed(2)} s   (${(isolated.meanWaitS / Math.max(federated.meanWaitS, 1e-9)).toFixed(1)}× shorter)
jobs run away from qy-a            ${federated.routed} of ${JOBS} (${federated.rerouted} given back by a silent site and routed again)
input bytes moved between sites    ${federated.crossSiteBytes}
classification violations          ${federated.violations + isolated.violations}
lost                               ${federated.lost + isolated.lost}
started at two sites               ${federated.duplicates + isolated.duplicates}${opts.kill ? "\n(federated run: qy-b's scheduler stopped mid-burst, back 3 s later)" : ''}${opts.killNats ? "\n(federated run: qy-b's nats-server killed mid-burst, back 8 s later)" : ''}`);
console.log(
  JSON.stringify({
    sites: SITES.length,
    jobs: JOBS,
    federatedMeanWaitS: r2(federated.meanWaitS),
    isolatedMeanWaitS: r2(isolated.meanWaitS),
    routedShare: r2(federated.routed / JOBS),
    crossSiteBytes: federated.crossSiteBytes,
    classificationViolations: federated.violations + isolated.violations,
    lost: federated.lost + isolated.lost,
    duplicates: federated.duplicates + isolated.duplicates,
    ...(opts.kill ? { killed: 'qy-b scheduler' } : opts.killNats ? { killed: 'qy-b nats-server' } : {}),
  }),
);
process.exit(0);
