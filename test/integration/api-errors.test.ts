import { jetstreamManager, DiscardPolicy } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { loadSchedulerConfig } from '../../scheduler/config';
import { buildHttpApp } from '../../scheduler/http/app';
import { SchedulerOperations } from '../../scheduler/operations';
import { Scheduler } from '../../scheduler/service';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { STREAMS, type ErrorBody } from '../../src/protocol';
import { waitUntil, type ApiClient } from '../helpers/api';
import { silentLog, startAgent, startScheduler, testNode, testTenantsFile, waitForNodes, type TestScheduler } from '../helpers/stack';

let nats: LocalNatsServer;
let s: TestScheduler;
let api: ApiClient;
let agent: Agent;

const ok = { pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, command: ['true'] };

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url, { bodyLimitBytes: 64 * 1024 });
  api = s.api;
  agent = await startAgent(nats.url, 'errs', [testNode('n1'), testNode('h1', 'super'), testNode('g1', 'intelligent')]);
  await waitForNodes(s.operator, ['n1', 'h1', 'g1']);
});

afterAll(async () => {
  await s?.close();
  await agent?.stop().catch(() => undefined);
  await nats?.dispose();
});

interface Case {
  name: string;
  /** Who calls: the tenant (default) or the operator. */
  as?: 'operator';
  method?: string;
  path?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  message: string | RegExp;
}

const huge = 'x'.repeat(70 * 1024);

const cases: Case[] = [
  { name: 'malformed JSON', rawBody: '{"pool":', status: 400, code: 'QY_ERR_MALFORMED_JSON', message: /^The body is not valid JSON: / },
  { name: 'empty JSON body', rawBody: '', status: 400, code: 'QY_ERR_MALFORMED_JSON', message: /^The body is not valid JSON: / },
  { name: 'unknown pool', body: { ...ok, pool: 'quantum' }, status: 400, code: 'QY_ERR_VALIDATION', message: /^Invalid request: body\.pool: Invalid option: expected one of "general"\|"intelligent"\|"super"$/ },
  { name: 'negative CPU', body: { ...ok, resources: { cpuMillis: -1, memBytes: 0 } }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.resources\.cpuMillis: Too small/ },
  { name: 'absurd CPU', body: { ...ok, resources: { cpuMillis: 2_000_000_000, memBytes: 0 } }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.resources\.cpuMillis: Too big/ },
  { name: 'fractional bytes', body: { ...ok, resources: { cpuMillis: 1000, memBytes: 1.5 } }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.resources\.memBytes: Invalid input: expected int/ },
  { name: 'resources missing', body: { pool: 'general' }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.resources: Invalid input: expected object, received undefined/ },
  { name: 'a misspelt field', body: { ...ok, resource: {} }, status: 400, code: 'QY_ERR_VALIDATION', message: /Unrecognized key: "resource"/ },
  { name: 'whole GPUs and a share together', body: { pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1, gpuMilli: 500 } }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.resources\.gpuMilli: ask for whole gpus or a gpuMilli share/ },
  { name: 'super pool without walltime', body: { ...ok, pool: 'super' }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.walltimeSeconds: jobs in the super pool need a walltimeSeconds/ },
  { name: 'zero tasks', body: { ...ok, tasks: 0 }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.tasks: Too small/ },
  { name: 'too many tasks', body: { ...ok, tasks: 5000 }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.tasks: Too big/ },
  { name: 'a NUL in an argument', body: { ...ok, command: ['echo', 'a\u0000b'] }, status: 400, code: 'QY_ERR_VALIDATION', message: 'Invalid request: command.1: must not contain a NUL byte' },
  { name: 'a NUL in a variable', body: { ...ok, env: { A: 'b\u0000' } }, status: 400, code: 'QY_ERR_VALIDATION', message: 'Invalid request: env.A: must not contain a NUL byte' },
  { name: 'a control character in the name', body: { ...ok, name: 'report\u001b[31m' }, status: 400, code: 'QY_ERR_VALIDATION', message: 'Invalid request: name: must not contain control characters' },
  { name: 'a command that is not an array', body: { ...ok, command: 'rm -rf /' }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.command: Invalid input: expected array/ },
  { name: 'body over the size limit', body: { ...ok, env: { BIG: huge } }, status: 413, code: 'QY_ERR_BODY_TOO_LARGE', message: 'The body is larger than 65536 bytes' },
  { name: 'not JSON', rawBody: 'pool=general', headers: { 'content-type': 'text/plain' }, status: 415, code: 'QY_ERR_UNSUPPORTED_MEDIA_TYPE', message: /^Content type text\/plain is not supported/ },
  { name: 'unknown priority class', body: { ...ok, priorityClass: 'vip' }, status: 400, code: 'QY_ERR_UNKNOWN_PRIORITY_CLASS', message: 'priorityClass: unknown priority class vip (known: urgent, normal, batch, best-effort)' },
  { name: 'bad Idempotency-Key', body: ok, headers: { 'idempotency-key': 'k'.repeat(300) }, status: 400, code: 'QY_ERR_VALIDATION', message: 'Invalid request: Idempotency-Key must be 1 to 255 visible ASCII characters' },
  {
    name: 'larger than any node of the pool',
    body: { ...ok, resources: { cpuMillis: 64_000, memBytes: 0 } },
    status: 422,
    code: 'QY_ERR_UNSCHEDULABLE',
    message: 'The job can never run in pool general: never fits: 0/1 nodes could hold it even when empty: 1 too small for one task even when empty',
  },
  {
    name: 'a GPU model the pool does not have',
    body: { pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1 }, constraints: { gpuModels: ['B200'] } },
    status: 422,
    code: 'QY_ERR_UNSCHEDULABLE',
    message: 'The job can never run in pool intelligent: never fits: 0/1 nodes could hold it even when empty: 1 GPU model is not B200',
  },
  {
    name: 'a gang larger than the pool',
    body: { ...ok, pool: 'super', tasks: 2, walltimeSeconds: 10 },
    status: 422,
    code: 'QY_ERR_UNSCHEDULABLE',
    message: /never fits: .*\(at most 1 of 2 tasks fit the whole pool\)/,
  },
  { name: 'unknown job', method: 'GET', path: '/v1/jobs/nope', status: 404, code: 'QY_ERR_JOB_NOT_FOUND', message: 'Job nope not found' },
  { name: 'cancel of an unknown job', method: 'DELETE', path: '/v1/jobs/nope', status: 404, code: 'QY_ERR_JOB_NOT_FOUND', message: 'Job nope not found' },
  { name: 'page size zero', method: 'GET', path: '/v1/jobs?limit=0', status: 400, code: 'QY_ERR_VALIDATION', message: /querystring\.limit: Too small/ },
  { name: 'unknown state filter', method: 'GET', path: '/v1/jobs?state=sleeping', status: 400, code: 'QY_ERR_VALIDATION', message: /querystring\.state: Invalid option/ },
  { name: 'unknown node', as: 'operator', method: 'POST', path: '/v1/nodes/nope/cordon', status: 404, code: 'QY_ERR_NODE_NOT_FOUND', message: 'Node nope not found' },
  { name: 'bad drain body', as: 'operator', method: 'POST', path: '/v1/nodes/n1/drain', body: { requeue: 'yes' }, status: 400, code: 'QY_ERR_VALIDATION', message: /body\.requeue: Invalid input: expected boolean/ },
  { name: 'no such route', method: 'GET', path: '/v1/nothing', status: 404, code: 'QY_ERR_ROUTE_NOT_FOUND', message: 'No route GET /v1/nothing' },
  // With an archive, a NUL in a job id reached PostgreSQL and came back a 500 (test/integration/archive-api.test.ts).
  { name: 'a NUL in a job id', method: 'GET', path: '/v1/jobs/j0%00x', status: 400, code: 'QY_ERR_VALIDATION', message: 'Invalid request: the URL holds a control character (%00); ids, names, periods and filters never do' },
  { name: 'a control character in a filter', method: 'GET', path: '/v1/jobs?tenant=city-a%0A', status: 400, code: 'QY_ERR_VALIDATION', message: /control character \(%0A\)/ },
  // Refused by the router itself, before any hook: once answered in fastify's own shape ({error, code: FST_ERR_BAD_URL, …}).
  { name: 'a path that is not valid percent-encoding', method: 'GET', path: '/v1/jobs/j0%ff', status: 400, code: 'QY_ERR_VALIDATION', message: "Invalid request: '/v1/jobs/j0%ff' is not a valid url component" },
  { name: 'a job id longer than any id', method: 'GET', path: `/v1/jobs/${'j'.repeat(200)}`, status: 400, code: 'QY_ERR_VALIDATION', message: /is exceeding the max param length/ },
];

describe('bad input gets a 4xx with a stable code and a message naming the field', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const res = await (c.as === 'operator' ? s.operator : api).request<ErrorBody>(c.method ?? 'POST', c.path ?? '/v1/jobs', { body: c.body, rawBody: c.rawBody, headers: c.headers });
      expect(res.status).toBe(c.status);
      expect(res.body.code).toBe(c.code);
      expect(res.body.statusCode).toBe(c.status);
      if (typeof c.message === 'string') expect(res.body.message).toBe(c.message);
      else expect(res.body.message).toMatch(c.message);
    });
  }

  test('no rejected request left a job behind', async () => {
    const res = await api.request<{ items: unknown[] }>('GET', '/v1/jobs');
    expect(res.body.items).toEqual([]);
  });
});

describe('errors from the system rather than the input', () => {
  test('a log of a job that was never placed', async () => {
    await s.operator.request('POST', '/v1/nodes/n1/cordon');
    const id = await api.submit(ok as never);
    const res = await api.request<ErrorBody>('GET', `/v1/jobs/${id}/log`);
    expect(res.body).toEqual({ code: 'QY_ERR_LOG_UNAVAILABLE', statusCode: 404, message: `No log for job ${id}: it has not been placed yet` });
    await api.request('DELETE', `/v1/jobs/${id}`);
    await s.operator.request('POST', '/v1/nodes/n1/uncordon');
  });

  test('a log asked from an agent that is gone', async () => {
    const id = await api.submit({ ...ok, command: ['echo', 'hi'] } as never);
    await api.waitFor(id, ['succeeded']);
    await agent.stop();
    const res = await api.request<ErrorBody>('GET', `/v1/jobs/${id}/log`);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('QY_ERR_AGENT_UNAVAILABLE');
    expect(res.body.message).toMatch(/^The agent of node n1 did not answer: /);
  });

  test('a scheduler that has not rebuilt its state yet', async () => {
    const tenants = testTenantsFile();
    const idle = new Scheduler(loadSchedulerConfig({}, { natsUrl: nats.url, tenantsFile: tenants.file }), silentLog);
    const app = await buildHttpApp(idle, new SchedulerOperations(idle), { log: silentLog, bodyLimitBytes: 1024 });
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', payload: ok, headers: { authorization: `Bearer ${tenants.tokens['city-a']}` } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ code: 'QY_ERR_NOT_READY', statusCode: 503, message: 'The scheduler is not ready: starting' });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    await app.close();
  });

  test('an unexpected failure is a 500 with a code, not a stack trace', async () => {
    const idle = new Scheduler(loadSchedulerConfig({}, { natsUrl: nats.url, tenantsFile: testTenantsFile().file }), silentLog);
    const app = await buildHttpApp(idle, new SchedulerOperations(idle), { log: silentLog, bodyLimitBytes: 1024 });
    app.get('/boom', async () => {
      throw new Error('disk on fire');
    });
    const res = await app.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: 'QY_ERR_INTERNAL', statusCode: 500, message: 'Internal error: disk on fire' });
    await app.close();
  });

  test('a job store that refuses writes gives 503 and keeps no half-written job', async () => {
    const ids = async () => (await api.request<{ items: { id: string }[] }>('GET', '/v1/jobs?limit=1000')).body.items.map((j) => j.id);
    // Ready first: on a busy machine a lease renewed late may have sent the scheduler through a rebuild just now.
    await waitUntil(async () => ((await api.request('GET', '/readyz')).status === 200 ? true : undefined), 10_000);
    const before = await ids();
    const jsm = await jetstreamManager(s.scheduler.nc);
    const info = await jsm.streams.info(STREAMS.jobs);
    await jsm.streams.update(STREAMS.jobs, { ...info.config, max_msgs: info.state.messages, discard: DiscardPolicy.New });
    const res = await api.request<ErrorBody>('POST', '/v1/jobs', { body: ok });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('QY_ERR_STORE_UNAVAILABLE');
    expect(res.body.message).toMatch(/^The job store \(NATS JetStream\) is unavailable: .*maximum messages/);
    await jsm.streams.update(STREAMS.jobs, { ...info.config, max_msgs: -1, discard: DiscardPolicy.Old });
    // The failed write made the scheduler rebuild from the log: the refused job is not in it.
    await waitUntil(async () => ((await api.request('GET', '/readyz')).status === 200 ? true : undefined), 10_000);
    expect(await ids()).toEqual(before);
  });
});
