import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { submitMessageId } from '../../scheduler/operations';
import { leaseKeyOf } from '../../scheduler/service';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { jobSpecSchema, type JobSpecInput, type JobSubmitted, type JobView } from '../../src/protocol';
import { JobLog } from '../../src/store/job-log';
import { openBucket } from '../../src/store/nats';
import { waitUntil } from '../helpers/api';
import { silentLog, startAgent, startScheduler, testNode, testTenantsFile, waitForNodes, type TestScheduler } from '../helpers/stack';

const run = promisify(execFile);
let nats: LocalNatsServer;
let one: TestScheduler;
let two: TestScheduler;
let agent: Agent;

const cpuJob: JobSpecInput = { pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0 };
const gpuJob: JobSpecInput = { pool: 'intelligent', resources: { cpuMillis: 100, memBytes: 1024, gpus: 1 }, durationSeconds: 0 };

beforeAll(async () => {
  nats = await startNatsServer();
  const tenants = testTenantsFile();
  one = await startScheduler(nats.url, { replicaId: 'one', tenantsFile: tenants.file });
  two = await startScheduler(nats.url, { replicaId: 'two', tenantsFile: tenants.file });
  for (const s of [one, two]) Object.assign(s, { tokens: tenants.tokens, api: s.api.as(tenants.tokens['city-a']), operator: s.api.as(tenants.tokens.ops) });
  agent = await startAgent(nats.url, 'rep', [testNode('rep-1'), testNode('rep-gpu', 'intelligent')], 'virtual');
  await waitForNodes(one.operator, ['rep-1', 'rep-gpu']);
});

afterAll(async () => {
  await agent?.stop();
  await two?.close();
  await one?.close();
  await nats?.dispose();
});

test('the first replica leads every pool; the other stands by and says who leads each', async () => {
  expect(one.scheduler.leadership.leadsAll).toBe(true);
  expect(two.scheduler.leadership.ledPools.length).toBe(0);
  const ready = await two.api.request<{ role: string; pools: Record<string, unknown> }>('GET', '/readyz');
  expect(ready.status).toBe(200);
  expect(ready.body.role).toBe('standby');
  for (const pool of ['general', 'intelligent', 'super']) expect(ready.body.pools[pool]).toEqual({ role: 'standby', leader: { replica: 'one', url: one.url, term: one.scheduler.leadership.termOf(pool as 'general') } });
  expect((await two.api.request('GET', '/readyz?role=leader')).status).toBe(503);
  expect((await one.api.request('GET', '/readyz?role=leader')).status).toBe(200);
});

test('only a pool’s leader reports its state in metrics, so sums over replicas count it once', async () => {
  const metrics = async (s: TestScheduler) => (await s.api.request<string>('GET', '/metrics')).body;
  const [a, b] = [await metrics(one), await metrics(two)];
  expect(a).toMatch(/^qy_scheduler_leader\{pool="general"\} 1$/m);
  expect(b).toMatch(/^qy_scheduler_leader\{pool="general"\} 0$/m);
  expect(a).toMatch(/^qy_nodes\{pool="general",state="ready"\} 1$/m);
  expect(b).not.toMatch(/^qy_nodes\{/m);
  expect(b).not.toMatch(/^qy_jobs_pending\{/m);
  expect(b).toMatch(/^qy_scheduler_ready 1$/m);
});

test('a standby refuses writes with 503 QY_ERR_NOT_LEADER and the leader’s address, and serves reads', async () => {
  const refused = await two.api.request('POST', '/v1/jobs', { body: cpuJob });
  expect(refused.status).toBe(503);
  expect(refused.body).toMatchObject({ code: 'QY_ERR_NOT_LEADER', statusCode: 503 });
  expect((refused.body as { message: string }).message).toContain(`the leader of pool general is one at ${one.url}`);
  expect(refused.headers.get('x-qy-leader')).toBe(one.url);
  expect((await two.operator.request('POST', '/v1/nodes/rep-1/cordon')).body).toMatchObject({ code: 'QY_ERR_NOT_LEADER' });
  expect((await two.operator.request('POST', '/v1/nodes/nowhere/cordon')).body).toMatchObject({ code: 'QY_ERR_NODE_NOT_FOUND' });

  // What the leader does, the standby shows, from the job log it follows.
  const id = await one.api.submit(cpuJob);
  const done = await one.api.waitFor(id, ['succeeded']);
  const seen = await waitUntil(async () => {
    const res = await two.api.request<JobView>('GET', `/v1/jobs/${id}`);
    return res.status === 200 && res.body.state === 'succeeded' ? res.body : undefined;
  }, 10_000);
  expect(seen).toEqual(done);
  expect((await two.api.request('DELETE', `/v1/jobs/${id}`)).body).toMatchObject({ code: 'QY_ERR_NOT_LEADER' });
  const nodes = (await two.operator.request<{ items: { id: string }[] }>('GET', '/v1/nodes')).body.items.map((n) => n.id);
  expect(nodes).toEqual(expect.arrayContaining(['rep-1', 'rep-gpu']));
});

test('qy sent to a standby follows it to the leader', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'qy-replicas-')), 'job.json');
  writeFileSync(file, JSON.stringify(cpuJob));
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/qy.ts', '--server', two.url, 'submit', file], { env: { ...process.env, QY_TOKEN: two.tokens['city-a'] } });
  expect(stderr).toContain(`is a standby; sending to the leader at ${one.url}`);
  const id = stdout.trim().split(/\s+/)[0];
  expect((await one.api.job(id)).tenant).toBe('city-a');
});

test('pools can have different leaders: the one whose lease moves changes hands, the others stay', async () => {
  const termBefore = one.scheduler.leadership.termOf('general')!;
  const rebuilds = async (s: TestScheduler) => (await s.scheduler.metrics.rebuilds.get()).values[0]?.value ?? 0;
  const oneRebuildsBefore = await rebuilds(one);
  const kv = await openBucket(one.scheduler.nc, 'leases', 1);
  const entry = await kv.get(leaseKeyOf('general'));
  // The general pool's lease now names replica two (as after a failover): two takes it up at its next look,
  // and one learns at its next renewal that it lost it.
  await kv.update(leaseKeyOf('general'), JSON.stringify({ holder: 'two', address: two.url, term: termBefore }), entry!.revision);
  // One stops placing the pool at once but rebuilds its state a renewal later (not ready meanwhile): wait for that rebuild too.
  await waitUntil(async () => (two.scheduler.leads('general') && two.scheduler.ready && !one.scheduler.leads('general') && (await rebuilds(one)) > oneRebuildsBefore && one.scheduler.ready ? true : undefined), 20_000);
  expect(two.scheduler.leadership.termOf('general')).toBeGreaterThan(termBefore);
  expect([...one.scheduler.leadership.ledPools].sort()).toEqual(['intelligent', 'super']);
  expect((await one.api.request<{ role: string }>('GET', '/readyz')).body.role).toBe('partial');

  // Each replica places its pools' jobs, on the same agent; the other refuses them, naming the leader.
  const cpu = await two.api.submit(cpuJob);
  const gpu = await one.api.submit(gpuJob);
  expect((await two.api.waitFor(cpu, ['succeeded'])).attempts).toBe(1);
  expect((await one.api.waitFor(gpu, ['succeeded'])).attempts).toBe(1);
  const refused = await one.api.request('POST', '/v1/jobs', { body: cpuJob });
  expect(refused.body).toMatchObject({ code: 'QY_ERR_NOT_LEADER' });
  expect(refused.headers.get('x-qy-leader')).toBe(two.url);
  expect((await two.api.request('POST', '/v1/jobs', { body: gpuJob })).headers.get('x-qy-leader')).toBe(one.url);
  // And each shows the other's job as it ended.
  await waitUntil(async () => ((await one.api.job(cpu)).state === 'succeeded' && (await two.api.job(gpu)).state === 'succeeded' ? true : undefined), 10_000);
});

test('a deposed leader’s fenced-off submission does not block a retry of the same Idempotency-Key on the new leader', async () => {
  const term = two.scheduler.leadership.termOf('general')!;
  // What the general pool's previous leader stored after losing its lease: a submission from its term.
  const ghost: JobSubmitted = {
    type: 'submitted',
    v: 1,
    jobId: 'ghost-of-a-deposed-leader',
    tenant: 'city-a',
    spec: jobSpecSchema.parse(cpuJob),
    submittedAtMs: Date.now(),
    priority: 500,
    maxAttempts: 3,
    idempotencyKey: 'retried-after-failover',
    term: term - 1,
  };
  const log = new JobLog(two.scheduler.nc, silentLog);
  expect((await log.append(ghost, submitMessageId('city-a', 'retried-after-failover', term - 1))).duplicate).toBe(false);
  // The client saw a 503 from the deposed leader and retries on the new one.
  const res = await two.api.request<{ id: string }>('POST', '/v1/jobs', { body: cpuJob, headers: { 'idempotency-key': 'retried-after-failover' } });
  expect(res.status).toBe(202);
  expect(res.body.id).not.toBe(ghost.jobId);
  expect((await two.api.waitFor(res.body.id, ['succeeded'])).attempts).toBe(1);
  expect((await two.api.request('GET', `/v1/jobs/${ghost.jobId}`)).status).toBe(404);
});
