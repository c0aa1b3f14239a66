import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { LEADER_LEASE_KEY } from '../../scheduler/service';
import { startNatsServer, type LocalNatsServer } from '../../src/local/nats-server';
import type { JobView } from '../../src/protocol';
import { openLeasesKv } from '../../src/store/lease';
import { waitUntil } from '../helpers/api';
import { startAgent, startScheduler, testNode, testTenantsFile, waitForNodes, type TestScheduler } from '../helpers/stack';

const run = promisify(execFile);
let nats: LocalNatsServer;
let leader: TestScheduler;
let standby: TestScheduler;
let agent: Agent;

beforeAll(async () => {
  nats = await startNatsServer();
  const tenants = testTenantsFile();
  leader = await startScheduler(nats.url, { replicaId: 'one', tenantsFile: tenants.file });
  standby = await startScheduler(nats.url, { replicaId: 'two', tenantsFile: tenants.file });
  for (const s of [leader, standby]) Object.assign(s, { tokens: tenants.tokens, api: s.api.as(tenants.tokens['city-a']), operator: s.api.as(tenants.tokens.ops) });
  agent = await startAgent(nats.url, 'rep', [testNode('rep-1'), testNode('rep-2')], 'sim');
  await waitForNodes(leader.operator, ['rep-1', 'rep-2']);
});

afterAll(async () => {
  await agent?.stop();
  await standby?.close();
  await leader?.close();
  await nats?.dispose();
});

test('one replica leads, the other stands by and says who leads', async () => {
  expect(leader.scheduler.leading).toBe(true);
  expect(standby.scheduler.leading).toBe(false);
  const ready = await standby.api.request('GET', '/readyz');
  expect(ready.status).toBe(200);
  expect(ready.body).toEqual({ ready: true, role: 'standby', leader: { replica: 'one', url: leader.url, term: leader.scheduler.term } });
  expect((await standby.api.request('GET', '/readyz?role=leader')).status).toBe(503);
});

test('only the leader reports the cluster’s state in its metrics, so sums over replicas count it once', async () => {
  const metrics = async (s: TestScheduler) => (await s.api.request<string>('GET', '/metrics')).body;
  const [one, two] = [await metrics(leader), await metrics(standby)];
  expect(one).toMatch(/^qy_scheduler_leader 1$/m);
  expect(two).toMatch(/^qy_scheduler_leader 0$/m);
  expect(one).toMatch(/^qy_nodes\{pool="general",state="ready"\} 2$/m);
  expect(two).not.toMatch(/^qy_nodes\{/m);
  expect(two).not.toMatch(/^qy_jobs_pending\{/m);
  expect(two).toMatch(/^qy_scheduler_ready 1$/m);
});

test('a standby refuses writes with 503 QY_ERR_NOT_LEADER and the leader’s address, and serves reads', async () => {
  const refused = await standby.api.request('POST', '/v1/jobs', { body: { pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 } } });
  expect(refused.status).toBe(503);
  expect(refused.body).toMatchObject({ code: 'QY_ERR_NOT_LEADER', statusCode: 503 });
  expect((refused.body as { message: string }).message).toContain(`one at ${leader.url}`);
  expect(refused.headers.get('x-qy-leader')).toBe(leader.url);
  for (const [method, path] of [['DELETE', '/v1/jobs/j1'], ['POST', '/v1/nodes/rep-1/cordon']] as const) {
    expect((await standby.operator.request(method, path)).body).toMatchObject({ code: 'QY_ERR_NOT_LEADER' });
  }

  // What the leader does, the standby shows, from the job log it follows.
  const id = await leader.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0 });
  const done = await leader.api.waitFor(id, ['succeeded']);
  const seen = await waitUntil(async () => {
    const res = await standby.api.request<JobView>('GET', `/v1/jobs/${id}`);
    return res.status === 200 && res.body.state === 'succeeded' ? res.body : undefined;
  }, 10_000);
  expect(seen).toEqual(done);
  const nodes = (await standby.operator.request<{ items: { id: string }[] }>('GET', '/v1/nodes')).body.items.map((n) => n.id);
  expect(nodes).toEqual(expect.arrayContaining(['rep-1', 'rep-2']));
});

test('qy sent to a standby follows it to the leader', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'qy-replicas-')), 'job.json');
  writeFileSync(file, JSON.stringify({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0 }));
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scheduler/cli/qy.ts', '--server', standby.url, 'submit', file], { env: { ...process.env, QY_TOKEN: standby.tokens['city-a'] } });
  expect(stderr).toContain(`is a standby; sending to the leader at ${leader.url}`);
  const id = stdout.trim().split(/\s+/)[0];
  expect((await leader.api.job(id)).tenant).toBe('city-a');
});

test('a leader whose lease is taken stops accepting writes; the new holder leads with a higher term', async () => {
  const before = leader.scheduler.term;
  // Someone else (an operator's hand, a partition healing late) wrote the lease: the leader learns at its next renewal.
  const kv = await openLeasesKv(leader.scheduler.nc, 1);
  const entry = await kv.get(LEADER_LEASE_KEY);
  await kv.update(LEADER_LEASE_KEY, JSON.stringify({ holder: 'elsewhere', address: 'http://elsewhere', term: before + 1 }), entry!.revision);
  await waitUntil(() => (leader.scheduler.leading ? undefined : true), 10_000);
  const refused = await leader.api.request('POST', '/v1/jobs', { body: { pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 } } });
  // Refused: as a standby, or while it rebuilds its state as one.
  expect(refused.status).toBe(503);
  expect(['QY_ERR_NOT_LEADER', 'QY_ERR_NOT_READY']).toContain((refused.body as { code: string }).code);
  // Nobody renews 'elsewhere': after the lease one of the two replicas takes over, in a newer term, and places again.
  const next = await waitUntil(() => [leader, standby].find((s) => s.scheduler.leading && s.scheduler.ready), 20_000);
  expect(next.scheduler.term).toBeGreaterThan(before + 1);
  const id = await next.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0 });
  expect((await next.api.waitFor(id, ['succeeded'])).attempts).toBe(1);
});
