import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNatsFederation, type LocalNatsFederation } from '../../harness/nats-server';
import { BucketOpener, ClaimStore } from '../../src/store/federation-buckets';
import { jobSpecSchema, type Claim, type JobView } from '../../src/protocol';
import type { Agent } from '../../agents/agent';
import { startAgent, startScheduler, testNode, type TestScheduler } from '../helpers/stack';
import { waitUntil } from '../helpers/api';

/**
 * Two sites on loopback, each a nats-server with its own account, joined by a gateway; a scheduler and an
 * agent of virtual nodes per site. qy-a has one 8-core node, qy-b two.
 */

const SITES = ['qy-a', 'qy-b'];
let fed: LocalNatsFederation;
const schedulers = new Map<string, TestScheduler>();
const agents: Agent[] = [];
let federationFile: string;

function writeFederationFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qy-federation-'));
  const file = join(dir, 'federation.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      sites: [
        { name: 'qy-a', pools: ['general'], certified: ['public', 'internal', 'sensitive', 'restricted'] },
        { name: 'qy-b', pools: ['general'], certified: ['public', 'internal', 'sensitive'] },
      ],
      links: [{ between: ['qy-a', 'qy-b'], bandwidthGbps: 10, latencyMs: 5 }],
      weights: { secondsPerKgCo2: 0, secondsPerYuan: 0, preferHomeWithinS: 1 },
    }),
  );
  return file;
}

async function startSite(site: string): Promise<TestScheduler> {
  const s = fed.site(site);
  const scheduler = await startScheduler(s.url, {
    site,
    federationFile,
    federationNatsUrl: s.fedUrl,
    federationNatsUser: s.fedUser,
    federationNatsPassword: s.fedPassword,
    federationSummaryIntervalMs: 200,
    federationSiteDownAfterMs: 1_500,
  });
  schedulers.set(site, scheduler);
  return scheduler;
}

const A = () => schedulers.get('qy-a')!;
const B = () => schedulers.get('qy-b')!;

/** Waits until each site has heard the other's summary (a route needs it). */
async function waitForSummaries(): Promise<void> {
  await waitUntil(async () => (SITES.every((site) => schedulers.get(site)!.scheduler.federation!.summariesNow().size === SITES.length) ? true : undefined), 15_000, () => 'sites did not hear each other');
}

/** Cancels jobs submitted at qy-a and waits until each has ended (so the next test finds qy-a empty). */
async function cancelAll(ids: string[]): Promise<void> {
  for (const id of ids) await A().api.request('DELETE', `/v1/jobs/${id}`);
  for (const id of ids) await A().api.waitFor(id, ['cancelled', 'succeeded', 'failed']);
}

const job = (extra: Record<string, unknown> = {}) => ({ pool: 'general' as const, resources: { cpuMillis: 4000, memBytes: 1024 ** 3 }, durationSeconds: 600, ...extra });

beforeAll(async () => {
  fed = await startNatsFederation(SITES);
  federationFile = writeFederationFile();
  for (const site of SITES) await startSite(site);
  agents.push(await startAgent(fed.site('qy-a').url, 'a-agent', [testNode('a-n1', 'general', { securityLevel: 'restricted' })], 'virtual'));
  agents.push(await startAgent(fed.site('qy-b').url, 'b-agent', [testNode('b-n1'), testNode('b-n2')], 'virtual'));
  await waitUntil(async () => (A().scheduler.store.cluster.nodesOf('general').length === 1 && B().scheduler.store.cluster.nodesOf('general').length === 2 ? true : undefined), 15_000, () => 'nodes did not register');
  await waitForSummaries();
}, 90_000);

afterAll(async () => {
  for (const a of agents) await a.stop();
  for (const s of schedulers.values()) await s.close();
  await fed?.dispose();
});

describe('two sites joined by a gateway', () => {
  test('each site keeps its own streams: a job at one site is unknown at the other', async () => {
    const id = await A().api.submit(job({ durationSeconds: 1 }));
    const view = await A().api.waitFor(id, ['succeeded']);
    expect(view.site).toBe('qy-a');
    expect((await B().api.request('GET', `/v1/jobs/${id}`)).status).toBe(404);
  });

  test('under skewed load jobs flood qy-a and the router sends some to qy-b; the reason says why', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await A().api.submit(job({ name: `burst-${i}` })));
    const views = await Promise.all(ids.map((id) => A().api.waitFor(id, ['running'])).map((p) => p.catch(() => undefined)));
    const all = await Promise.all(ids.map((id) => A().api.job(id)));
    const where = all.map((v) => v.site);
    expect(where.filter((s) => s === 'qy-b').length).toBeGreaterThan(0);
    expect(where.filter((s) => s === 'qy-a').length).toBeGreaterThan(0);
    const routed = all.find((v) => v.site === 'qy-b')!;
    expect(routed.homeSite).toBe('qy-a');
    expect(routed.route).toMatch(/^routed from qy-a to qy-b \(score/);
    // The executing site knows the job by the same id, for the same tenant.
    expect((await B().api.job(routed.id)).homeSite).toBe('qy-a');
    // 3 cores' worth at b: two 8-core nodes take 4 of the 4-core jobs at most; every job runs exactly once.
    expect(views.filter(Boolean).length).toBeGreaterThanOrEqual(4);
    await cancelAll(ids);
  }, 60_000);

  test('a restricted job never leaves its home, however full home is', async () => {
    const started = [await A().api.submit(job()), await A().api.submit(job())];
    try {
      await Promise.all(started.map((id) => A().api.waitFor(id, ['running'])));
      const id = await A().api.submit(job({ dataClass: 'restricted' }));
      started.push(id);
      const view = await A().api.job(id);
      expect(view.site).toBe('qy-a');
      expect(view.route).toMatch(/^stays at qy-a \(score 300\.0s: wait ~300\.0s/);
      expect(view.route).toContain('qy-b: restricted data never leaves qy-a');
      expect(view.state).toBe('pending');
    } finally {
      await cancelAll(started);
    }
  }, 60_000);

  test('a job naming only a site not certified for its data is refused with each site\'s reason', async () => {
    const res = await A().api.request<{ code: string; message: string }>('POST', '/v1/jobs', { body: job({ dataClass: 'restricted', sites: ['qy-b'] }) });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('QY_ERR_NO_FEASIBLE_SITE');
    expect(res.body.message).toBe('No site may run this job: qy-a: not among the sites the job names; qy-b: restricted data never leaves qy-a');
    const unknown = await A().api.request<{ code: string }>('POST', '/v1/jobs', { body: job({ sites: ['nowhere'] }) });
    expect([unknown.status, unknown.body.code]).toEqual([400, 'QY_ERR_UNKNOWN_SITE']);
  });

  test('an Idempotency-Key holds for a job routed away: a retry gets the same job, another body is refused', async () => {
    const first = await A().api.submit(job({ durationSeconds: 1, sites: ['qy-b'] }), 'fed-key-1');
    expect((await A().api.job(first)).site).toBe('qy-b');
    expect(await A().api.submit(job({ durationSeconds: 1, sites: ['qy-b'] }), 'fed-key-1')).toBe(first);
    const reused = await A().api.request<{ code: string }>('POST', '/v1/jobs', { body: job({ durationSeconds: 2, sites: ['qy-b'] }), headers: { 'idempotency-key': 'fed-key-1' } });
    expect([reused.status, reused.body.code]).toEqual([409, 'QY_ERR_IDEMPOTENCY_KEY_REUSED']);
    await A().api.waitFor(first, ['succeeded']);
  }, 30_000);

  test('cancel from the submitting site stops the job where it runs', async () => {
    const id = await A().api.submit(job({ sites: ['qy-b'] }));
    const running = await A().api.waitFor(id, ['running']);
    expect(running.site).toBe('qy-b');
    const res = await A().api.request<{ state: string }>('DELETE', `/v1/jobs/${id}`);
    expect(res.status).toBe(202);
    const done = await A().api.waitFor(id, ['cancelled']);
    expect(done.site).toBe('qy-b');
    expect((await B().api.job(id)).state).toBe('cancelled');
  }, 30_000);

  test('datasets: registration, tenant isolation, lineage across sites, destruction', async () => {
    const hash = `sha256:${'ab'.repeat(32)}`;
    const reg = await A().api.request<{ id: string; site: string }>('POST', '/v1/datasets', { body: { name: 'census', site: 'qy-a', sizeBytes: 1e9, classification: 'internal', contentHash: hash } });
    expect(reg.status).toBe(201);
    const ds = reg.body.id;
    expect(ds).toMatch(/^ds-qy-a-/);
    const out = (await A().api.request<{ id: string }>('POST', '/v1/datasets', { body: { name: 'result', sizeBytes: 0, classification: 'internal', contentHash: hash } })).body.id;
    // Another tenant sees nothing; an operator sees it; another site reads the record across the gateway.
    expect((await A().as('city-b').request('GET', `/v1/datasets/${ds}`)).status).toBe(404);
    expect((await A().operator.request('GET', `/v1/datasets/${ds}`)).status).toBe(200);
    expect((await B().api.request<{ name: string }>('GET', `/v1/datasets/${ds}`)).body.name).toBe('census');
    // A job that reads it and writes another, sent to qy-b: the lineage names both.
    const id = await A().api.submit(job({ durationSeconds: 1, sites: ['qy-b'], inputs: [ds], outputs: [out] }));
    await A().api.waitFor(id, ['succeeded']);
    // Its usage was metered where it ran, under the tenant's name; the submitting site answers for it.
    const period = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10); // the local day (UTC+8 by default)
    const usage = await waitUntil(async () => {
      const r = await A().api.request<{ byJob: Record<string, unknown>; byTenant: Record<string, unknown> }>('GET', `/v1/usage?period=${period}&jobId=${id}`);
      return r.status === 200 && r.body.byJob[id] ? r.body : undefined;
    }, 10_000, () => 'no usage for the job at its home');
    expect(Object.keys(usage.byTenant)).toEqual(['city-a']);
    const lineage = await B().api.request<{ jobs: { jobId: string; role: string; site: string }[] }>('GET', `/v1/datasets/${ds}/lineage`);
    expect(lineage.body.jobs).toEqual([expect.objectContaining({ jobId: id, role: 'read', site: 'qy-b' })]);
    expect((await A().api.request<{ jobs: { role: string }[] }>('GET', `/v1/datasets/${out}/lineage`)).body.jobs.map((j) => j.role)).toEqual(['wrote']);
    const audit = await A().operator.request<{ items: { action: string; target: string }[] }>('GET', `/v1/audit?target=${ds}`);
    expect(audit.body.items.map((r) => r.action)).toEqual(['dataset.register', 'dataset.read']);
    // Destruction: a confirmation with who, when and the hash; twice is refused; a destroyed input too.
    const destroyed = await A().api.request<{ destroyedBy: string; contentHash: string; destroyedAt: string }>('POST', `/v1/datasets/${ds}/destroy`);
    expect(destroyed.status).toBe(200);
    expect(destroyed.body).toMatchObject({ destroyedBy: 'city-a', contentHash: hash });
    const again = await A().api.request<{ code: string }>('POST', `/v1/datasets/${ds}/destroy`);
    expect([again.status, again.body.code]).toEqual([409, 'QY_ERR_DATASET_DESTROYED']);
    const use = await A().api.request<{ code: string }>('POST', '/v1/jobs', { body: job({ inputs: [ds] }) });
    expect([use.status, use.body.code]).toEqual([409, 'QY_ERR_DATASET_DESTROYED']);
    const missing = await A().api.request<{ code: string }>('POST', '/v1/jobs', { body: job({ inputs: ['ds-qy-a-0000000000000000'] }) });
    expect([missing.status, missing.body.code]).toEqual([404, 'QY_ERR_DATASET_NOT_FOUND']);
  }, 30_000);

  test('the claim: once the executor starts a job the home cannot take it back, and a job taken back cannot start', async () => {
    const conns: NatsConnection[] = [];
    const open = async (site: string) => {
      const s = fed.site(site);
      const nc = await connect({ servers: s.fedUrl, user: s.fedUser, pass: s.fedPassword });
      conns.push(nc);
      return new ClaimStore(new BucketOpener(nc, 1), site);
    };
    try {
      const home = await open('qy-a');
      const executor = await open('qy-b');
      const claim = (jobId: string): Claim => ({ jobId, home: 'qy-a', executor: 'qy-b', state: 'offered', tenant: 'city-a', spec: jobSpecSchema.parse(job()), submittedAtMs: 0, route: 'test', gaveBack: [], inputs: [] });
      // Started first: the home's take-back loses.
      await home.create(claim('jclaim1'));
      const held = (await home.get('qy-a', 'jclaim1'))!;
      expect(await executor.bidToStart('qy-a', 'jclaim1', 'qy-b')).toEqual({ ok: true });
      expect(await home.replace({ ...held.value, executor: 'qy-a' }, held.revision)).toBe(false);
      expect(await executor.bidToStart('qy-a', 'jclaim1', 'qy-b')).toEqual({ ok: true }); // a replay after a restart
      // Taken back first: the executor's bid loses and the job is never started there.
      await home.create(claim('jclaim2'));
      const held2 = (await home.get('qy-a', 'jclaim2'))!;
      expect(await home.replace({ ...held2.value, executor: 'qy-a', gaveBack: ['qy-b'] }, held2.revision)).toBe(true);
      expect(await executor.bidToStart('qy-a', 'jclaim2', 'qy-b')).toEqual({ ok: false, reason: 'qy-a gave it to qy-a' });
      // One claim per job id, ever.
      await expect(home.create(claim('jclaim1'))).rejects.toThrow();
    } finally {
      for (const nc of conns) await nc.close();
    }
  });

  test('a job taken back while it waits at the executor is given up there, never started, and runs once at home', async () => {
    // Fill qy-b (two 8-core nodes) with its own jobs, so the job sent there waits in its queue.
    const fills: string[] = [];
    for (let i = 0; i < 4; i++) fills.push(await B().api.submit(job({ sites: ['qy-b'] })));
    await Promise.all(fills.map((id) => B().api.waitFor(id, ['running'])));
    const id = await A().api.submit(job({ durationSeconds: 1, sites: ['qy-b'] }));
    await waitUntil(async () => ((await B().api.request<JobView>('GET', `/v1/jobs/${id}`)).body.state === 'pending' ? true : undefined), 10_000, () => 'not queued at qy-b');
    // The home takes it back, as it does when the executor falls silent: compare-and-set on the offered claim.
    const nc = await connect({ servers: fed.site('qy-a').fedUrl, user: fed.site('qy-a').fedUser, pass: fed.site('qy-a').fedPassword });
    try {
      const claims = new ClaimStore(new BucketOpener(nc, 1), 'qy-a');
      const held = (await claims.get('qy-a', id))!;
      expect(held.value).toMatchObject({ executor: 'qy-b', state: 'offered' });
      expect(await claims.replace({ ...held.value, executor: 'qy-a', gaveBack: ['qy-b'] }, held.revision)).toBe(true);
    } finally {
      await nc.close();
    }
    // The home runs it; qy-b, once room frees up, places its copy, loses the claim and gives it up unstarted.
    const done = await A().api.waitFor(id, ['succeeded'], 20_000);
    expect(done.site).toBe('qy-a');
    for (const f of fills) await B().api.request('DELETE', `/v1/jobs/${f}`);
    const copy = await B().api.waitFor(id, ['cancelled'], 20_000);
    expect(copy.startedAt).toBeUndefined();
    expect(copy.reason).toContain('given back to qy-a: qy-a gave it to qy-a');
  }, 60_000);

  test('a site that goes silent before starting a job gives it back: it is routed again and runs once', async () => {
    // Fill qy-a so the router prefers qy-b, then stop qy-b's scheduler: its last summary still looks fresh.
    const fill = [await A().api.submit(job()), await A().api.submit(job())];
    await Promise.all(fill.map((id) => A().api.waitFor(id, ['running'])));
    await B().close();
    schedulers.delete('qy-b');
    const id = await A().api.submit(job({ durationSeconds: 1 }));
    const first = await A().api.job(id);
    expect(first.site).toBe('qy-b');
    // qy-b goes silent: the job comes back to qy-a (the only site left) and waits for room there.
    await waitUntil(async () => ((await A().api.job(id)).site === 'qy-a' ? true : undefined), 15_000, async () => `not routed again: ${JSON.stringify(await A().api.job(id))}`);
    for (const j of fill) await A().api.request('DELETE', `/v1/jobs/${j}`);
    const done: JobView = await A().api.waitFor(id, ['succeeded'], 20_000);
    expect(done.attempts).toBe(1);
    expect(done.route).toContain('qy-b: gave the job back');
    // qy-b comes back: it never had the job (the forward found nobody), so it does not run it.
    await startSite('qy-b');
    expect((await B().api.request('GET', `/v1/jobs/${id}`)).status).toBe(404);
  }, 60_000);
});
