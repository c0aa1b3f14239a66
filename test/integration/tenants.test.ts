import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { STREAMS, type ErrorBody, type JobSpecInput, type JobView, type TenantView } from '../../src/protocol';
import type { AuditRecord } from '../../src/store/audit-log';
import { waitUntil, type ApiClient } from '../helpers/api';
import { observeCycles, startAgent, startScheduler, testNode, waitForNodes, waitForPendingReason, type TestScheduler } from '../helpers/stack';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const sleep = (seconds: number, extra: Partial<JobSpecInput> = {}): JobSpecInput => ({ pool: 'general', resources: { cpuMillis: 1000, memBytes: MiB }, command: ['sleep', String(seconds)], ...extra });

let nats: LocalNatsServer;
let s: TestScheduler;
let a: ApiClient;
let b: ApiClient;
let ops: ApiClient;
const agents: Agent[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url, {}, {
    operators: ['ops', { name: 'kube-bridge', actAsTenants: true }],
    tenants: [
      { name: 'city-a', requestsPerSecond: 100_000, withRevokedToken: true },
      { name: 'city-b', requestsPerSecond: 100_000, priorityClasses: ['normal', 'batch'], dataClasses: ['public', 'internal'] },
      { name: 'noisy', requestsPerSecond: 20 },
      { name: 'quiet', requestsPerSecond: 1_000 },
      { name: 'capped', requestsPerSecond: 1_000, quotas: { general: { runningJobs: 1, pendingJobs: 2 } } },
    ],
  });
  a = s.api;
  b = s.as('city-b');
  ops = s.operator;
  agents.push(await startAgent(nats.url, 'ten', [testNode('t1', 'general', { labels: { host: 't1' } }), testNode('t2', 'general', { labels: { host: 't2' } })]));
  agents.push(await startAgent(nats.url, 'sec', [testNode('r1', 'general', { labels: { host: 'r1' }, securityLevel: 'restricted' })]));
  await waitForNodes(ops, ['t1', 't2', 'r1']);
});

afterAll(async () => {
  await s?.close();
  for (const agent of agents) await agent.stop();
  await nats?.dispose();
});

describe('no tenant sees or touches another tenant’s work', () => {
  let jobOfA: string;
  beforeAll(async () => {
    jobOfA = await a.submit(sleep(0));
    await a.waitFor(jobOfA, ['succeeded']);
  });

  const cases: { name: string; who: () => ApiClient; method: string; path: () => string; body?: unknown; status: number; code: string; message: string | RegExp }[] = [
    { name: 'read another tenant’s job', who: () => b, method: 'GET', path: () => `/v1/jobs/${jobOfA}`, status: 404, code: 'QY_ERR_JOB_NOT_FOUND', message: /^Job j\w+ not found$/ },
    { name: 'cancel another tenant’s job', who: () => b, method: 'DELETE', path: () => `/v1/jobs/${jobOfA}`, status: 404, code: 'QY_ERR_JOB_NOT_FOUND', message: /not found/ },
    { name: 'read another tenant’s job log', who: () => b, method: 'GET', path: () => `/v1/jobs/${jobOfA}/log`, status: 404, code: 'QY_ERR_JOB_NOT_FOUND', message: /not found/ },
    { name: 'read another tenant’s quotas and use', who: () => b, method: 'GET', path: () => '/v1/tenants/city-a', status: 404, code: 'QY_ERR_TENANT_NOT_FOUND', message: 'Tenant city-a not found' },
    { name: 'no token', who: () => a.as(undefined), method: 'GET', path: () => '/v1/jobs', status: 401, code: 'QY_ERR_UNAUTHENTICATED', message: 'Authentication required: send Authorization: Bearer <token>' },
    { name: 'a wrong token', who: () => a.as('qy_not-a-token'), method: 'GET', path: () => '/v1/jobs', status: 401, code: 'QY_ERR_UNAUTHENTICATED', message: 'Authentication required: the token is not valid' },
    { name: 'a revoked token', who: () => a.as(s.tokens['city-a:revoked']), method: 'GET', path: () => '/v1/jobs', status: 401, code: 'QY_ERR_UNAUTHENTICATED', message: 'Authentication required: the token has been revoked' },
    { name: 'a tenant listing nodes', who: () => b, method: 'GET', path: () => '/v1/nodes', status: 403, code: 'QY_ERR_FORBIDDEN', message: 'Forbidden: tenant city-b may not call GET /v1/nodes' },
    { name: 'a tenant cordoning a node', who: () => b, method: 'POST', path: () => '/v1/nodes/t1/cordon', status: 403, code: 'QY_ERR_FORBIDDEN', message: 'Forbidden: tenant city-b may not call POST /v1/nodes/:id/cordon' },
    { name: 'a tenant reading the audit log', who: () => b, method: 'GET', path: () => '/v1/audit', status: 403, code: 'QY_ERR_FORBIDDEN', message: /may not call GET \/v1\/audit/ },
    { name: 'a tenant changing its own quota', who: () => b, method: 'PUT', path: () => '/v1/tenants/city-b/quotas', body: {}, status: 403, code: 'QY_ERR_FORBIDDEN', message: /may not call PUT/ },
    { name: 'an operator submitting a job', who: () => ops, method: 'POST', path: () => '/v1/jobs', body: sleep(0), status: 403, code: 'QY_ERR_FORBIDDEN', message: 'Forbidden: operator ops may not call POST /v1/jobs' },
    { name: 'a priority class the tenant may not use', who: () => b, method: 'POST', path: () => '/v1/jobs', body: sleep(0, { priorityClass: 'urgent' }), status: 403, code: 'QY_ERR_FORBIDDEN', message: 'Forbidden: tenant city-b may not use priority class urgent' },
    { name: 'a data class the tenant may not submit', who: () => b, method: 'POST', path: () => '/v1/jobs', body: sleep(0, { dataClass: 'restricted' }), status: 403, code: 'QY_ERR_FORBIDDEN', message: 'Forbidden: tenant city-b may not submit restricted data' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const res = await c.who().request<ErrorBody>(c.method, c.path(), { body: c.body });
      expect(res.status).toBe(c.status);
      expect(res.body.code).toBe(c.code);
      expect(res.body.statusCode).toBe(c.status);
      if (typeof c.message === 'string') expect(res.body.message).toBe(c.message);
      else expect(res.body.message).toMatch(c.message);
      if (c.status === 401) expect(res.headers.get('www-authenticate')).toBe('Bearer realm="qingyang-scheduler"');
    });
  }

  test('a tenant lists only its own jobs; an operator sees all and can filter by tenant', async () => {
    await b.submit(sleep(0));
    const listed = (await b.request<{ items: JobView[] }>('GET', '/v1/jobs?limit=1000')).body.items;
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((j) => j.tenant === 'city-b')).toBe(true);
    const all = (await ops.request<{ items: JobView[] }>('GET', '/v1/jobs?limit=1000')).body.items;
    expect(new Set(all.map((j) => j.tenant))).toEqual(new Set(['city-a', 'city-b']));
    const filtered = (await ops.request<{ items: JobView[] }>('GET', '/v1/jobs?tenant=city-a&limit=1000')).body.items;
    expect(filtered.every((j) => j.tenant === 'city-a')).toBe(true);
    expect((await ops.request<JobView>('GET', `/v1/jobs/${jobOfA}`)).status).toBe(200);
  });
});

describe('a bridge acts for tenants', () => {
  test('an operator allowed to act as tenants submits as one; the job is the tenant’s and the audit names the bridge', async () => {
    const bridge = s.as('kube-bridge');
    const res = await bridge.request<{ id: string }>('POST', '/v1/jobs', { body: sleep(0), headers: { 'x-qy-act-as': 'city-b' } });
    expect(res.status).toBe(202);
    expect((await b.job(res.body.id)).tenant).toBe('city-b');
    expect((await a.request('GET', `/v1/jobs/${res.body.id}`)).status).toBe(404);
    const audit = await waitUntil(async () => {
      const r = await ops.request<{ items: AuditRecord[] }>('GET', `/v1/audit?target=${res.body.id}`);
      return r.body.items.find((x) => x.action === 'job.submit');
    }, 5_000);
    expect(audit.actor).toEqual({ kind: 'tenant', name: 'city-b', via: 'kube-bridge' });
  });

  test('other operators, and unknown tenants, are refused', async () => {
    const plain = await ops.request<ErrorBody>('POST', '/v1/jobs', { body: sleep(0), headers: { 'x-qy-act-as': 'city-b' } });
    expect(plain.status).toBe(403);
    expect(plain.body.code).toBe('QY_ERR_FORBIDDEN');
    const unknown = await s.as('kube-bridge').request<ErrorBody>('POST', '/v1/jobs', { body: sleep(0), headers: { 'x-qy-act-as': 'atlantis' } });
    expect(unknown.status).toBe(403);
  });
});

describe('rate limits and quotas', () => {
  test('a flood from one tenant gets 429s and does not stop the others', async () => {
    const noisy = s.as('noisy');
    const quiet = s.as('quiet');
    const [flood, calm] = await Promise.all([
      Promise.all(Array.from({ length: 120 }, () => noisy.request<ErrorBody>('GET', '/v1/pools'))),
      Promise.all(Array.from({ length: 20 }, () => quiet.request('POST', '/v1/jobs', { body: sleep(0) }))),
    ]);
    const limited = flood.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(50);
    expect(limited[0].body).toEqual({ code: 'QY_ERR_RATE_LIMITED', statusCode: 429, message: 'Too many requests from noisy: at most 20 per second' });
    expect(calm.map((r) => r.status)).toEqual(Array(20).fill(202));
  });

  test('a tenant at its running-jobs quota waits with the reason; over its pending quota it is refused', async () => {
    const capped = s.as('capped');
    const first = await capped.submit(sleep(30));
    await capped.waitFor(first, ['running']);
    const second = await capped.submit(sleep(0));
    await waitForPendingReason(capped, second);
    await observeCycles(s, 'general');
    const waiting = await capped.job(second);
    expect(waiting.state).toBe('pending');
    expect(waiting.pendingReason).toBe('tenant capped is at its general quota of 1 running jobs');
    await capped.submit(sleep(0));
    const refused = await capped.request<ErrorBody>('POST', '/v1/jobs', { body: sleep(0) });
    expect(refused.body).toEqual({ code: 'QY_ERR_QUOTA_EXCEEDED', statusCode: 429, message: 'Tenant capped is over its general pending jobs (2) quota' });
    // An operator raises the quota: the waiting jobs run, and the change is audited.
    const raised = await ops.request<TenantView>('PUT', '/v1/tenants/capped/quotas', { body: { general: { runningJobs: 5, pendingJobs: 10 } } });
    expect(raised.status).toBe(200);
    expect(raised.body.pools.find((p) => p.pool === 'general')?.quota).toEqual({ runningJobs: 5, pendingJobs: 10 });
    expect((await capped.waitFor(second, ['succeeded'])).state).toBe('succeeded');
    await capped.request('DELETE', `/v1/jobs/${first}`);
    const records = (await ops.request<{ items: AuditRecord[] }>('GET', '/v1/audit?action=tenant.quota')).body.items;
    expect(records.at(-1)).toMatchObject({ actor: { kind: 'operator', name: 'ops' }, target: 'capped', outcome: 'ok', details: { after: { general: { runningJobs: 5, pendingJobs: 10 } } } });
  });
});

describe('priority and preemption', () => {
  test('an urgent job preempts a batch job, which is requeued (not failed) and runs again later', async () => {
    const fill = { pool: 'general' as const, resources: { cpuMillis: 8000, memBytes: MiB }, constraints: { nodeSelector: { host: 't1' } } };
    const victim = await a.submit({ ...fill, priorityClass: 'batch', command: ['sh', '-c', 'if [ "$QY_ATTEMPT_ID" = "${QY_JOB_ID}-a1" ]; then sleep 30; fi'] });
    await a.waitFor(victim, ['running']);
    const urgent = await b.submit({ ...fill, priorityClass: 'normal', command: ['sleep', '1'] });
    const ran = await b.waitFor(urgent, ['running', 'succeeded'], 15_000);
    expect(ran.preempting).toEqual([victim]);
    const done = await a.waitFor(victim, ['succeeded', 'failed'], 20_000);
    expect(done.state).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(done.history[0]).toMatchObject({ outcome: 'preempted', reason: `preempted by ${urgent} (normal)` });
  });
});

describe('data classification and sandboxing', () => {
  test('a restricted job never shares a node with another tenant', async () => {
    const onR1 = { constraints: { nodeSelector: { host: 'r1' } } };
    const other = await b.submit(sleep(30, onR1));
    await b.waitFor(other, ['running']);
    const secret = await a.submit(sleep(0, { ...onR1, dataClass: 'restricted' }));
    await waitForPendingReason(a, secret);
    await observeCycles(s, 'general');
    const waiting = await a.job(secret);
    expect(waiting.state).toBe('pending');
    expect(waiting.pendingReason).toMatch(/^0\/3 nodes fit: .*1 hold another tenant's restricted work/);
    await b.request('DELETE', `/v1/jobs/${other}`);
    expect((await a.waitFor(secret, ['succeeded'], 15_000)).placement?.[0].nodeId).toBe('r1');
  });

  test('restricted data goes only to nodes certified for it', async () => {
    const res = await a.request<ErrorBody>('POST', '/v1/jobs', { body: sleep(0, { dataClass: 'restricted', constraints: { nodeSelector: { host: 't1' } } }) });
    expect(res.status).toBe(422);
    expect(res.body.message).toMatch(/never fits: .*security level below the data classification/);
  });

  test('a sandboxed task gets a private home and a reduced environment, removed afterwards', async () => {
    const id = await a.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: MiB }, sandbox: true, command: ['sh', '-c', 'echo "home=$HOME pwd=$(pwd) user=${USER:-none} vars=$(env | wc -l)"'] });
    await a.waitFor(id, ['succeeded']);
    const text = (await a.request<{ text: string }>('GET', `/v1/jobs/${id}/log`)).body.text.trim();
    const [, home, pwd, user, vars] = /^home=(\S+) pwd=(\S+) user=(\S+) vars=(\d+)$/.exec(text) ?? [];
    expect(home).toMatch(/qy-sandbox-/);
    expect(pwd).toBe(home);
    expect(user).toBe('none');
    expect(Number(vars)).toBeLessThan(30);
    const { stdout } = await run('sh', ['-c', `test -e ${home} && echo exists || echo gone`]);
    expect(stdout.trim()).toBe('gone');
  });
});

describe('a tamper-evident audit log', () => {
  test('actions are recorded in a hash chain that qy audit verify checks, and a missing record is named', async () => {
    const records = (await ops.request<{ items: AuditRecord[] }>('GET', '/v1/audit?limit=10000')).body.items;
    const actions = new Set(records.map((r) => r.action));
    for (const action of ['job.submit', 'job.cancel', 'tenant.quota', 'auth.failed', 'auth.forbidden']) expect(actions).toContain(action);
    expect(records.find((r) => r.action === 'auth.failed')).toMatchObject({ actor: { kind: 'anonymous' }, outcome: 'denied' });
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'cli/qy.ts', '--server', s.url, ...args], { env: { ...process.env, QY_TOKEN: s.tokens.ops } }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
    const intact = await cli('audit', 'verify');
    expect(intact.code).toBe(0);
    expect(intact.out).toMatch(/^audit chain intact: \d+ records/);

    // Remove a stored block from the stream, as someone with access to the store might.
    const jsm = await jetstreamManager(s.scheduler.nc);
    await ops.request('POST', '/v1/nodes/t2/cordon');
    await ops.request('POST', '/v1/nodes/t2/uncordon');
    const info = await jsm.streams.info(STREAMS.audit);
    const firstOfBlock = await waitUntil(async () => {
      const msg = await jsm.streams.getMessage(STREAMS.audit, { seq: info.state.last_seq - 1 });
      return (msg?.json() as { records: AuditRecord[] } | undefined)?.records[0].seq;
    }, 5_000);
    await jsm.streams.deleteMessage(STREAMS.audit, info.state.last_seq - 1);
    const broken = await cli('audit', 'verify');
    expect(broken.code).toBe(2);
    expect(broken.out.trim()).toBe(`audit chain BROKEN: record ${firstOfBlock} is missing`);
  });
});
