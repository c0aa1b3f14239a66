import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, test } from 'vitest';
import { SchedulerApiError, SchedulerClient, backoffMs, type SchedulerClientOptions } from '../../src/client';
import { freePort } from '../../harness/ports';

// The client's policy against stand-in replicas whose answers each test chooses; against a real scheduler
// it is exercised by the CLI, replicas, failover and load tests.

const servers: Server[] = [];
const clients: SchedulerClient[] = [];
afterAll(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await new Promise((r) => s.close(r));
});

interface Seen {
  method: string;
  path: string;
  actAs?: string;
  key?: string;
}

/** A stand-in scheduler replica that answers request n with `answer(n)` and records what it got. */
async function replica(answer: (n: number) => { status: number; body: unknown; headers?: Record<string, string>; raw?: boolean }): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, actAs: req.headers['x-qy-act-as'] as string | undefined, key: req.headers['idempotency-key'] as string | undefined });
    req.resume();
    req.on('end', () => {
      const a = answer(seen.length);
      res.writeHead(a.status, { 'content-type': a.raw ? 'text/html' : 'application/json', ...a.headers });
      res.end(a.raw ? String(a.body) : JSON.stringify(a.body));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function client(options: SchedulerClientOptions): SchedulerClient {
  const c = new SchedulerClient({ token: 'token', ...options });
  clients.push(c);
  return c;
}

const notReady = { status: 503, body: { code: 'QY_ERR_NOT_READY', message: 'The scheduler is not ready: starting', statusCode: 503 } };
const accepted = { status: 202, body: { id: 'j1', state: 'pending' } };
const spec = { pool: 'general', resources: { cpuMillis: 100, memBytes: 1 } } as const;
const fastRetry = { attempts: 5, initialDelayMs: 1, maxDelayMs: 4 };

test('a write refused by a standby goes once to the leader it names, which is asked first from then on', async () => {
  const leader = await replica(() => accepted);
  const standby = await replica(() => ({ status: 503, body: { code: 'QY_ERR_NOT_LEADER', message: 'the leader of pool general is a', statusCode: 503 }, headers: { 'x-qy-leader': leader.url } }));
  const redirects: string[] = [];
  const c = client({ url: standby.url, onRedirect: (from, to) => redirects.push(`${from} → ${to}`) });
  expect(await c.submit(spec, { actAs: 'beijing', idempotencyKey: 'kube-pod-1' })).toMatchObject({ id: 'j1', state: 'pending', replayed: false });
  expect(standby.seen).toEqual([{ method: 'POST', path: '/v1/jobs', actAs: 'beijing', key: 'kube-pod-1' }]);
  expect(leader.seen).toEqual([{ method: 'POST', path: '/v1/jobs', actAs: 'beijing', key: 'kube-pod-1' }]);
  expect(redirects).toEqual([`${standby.url} → ${leader.url}`]);
  await c.submit(spec);
  expect([standby.seen.length, leader.seen.length, c.url]).toEqual([1, 2, leader.url]);
});

test('a 503 without a leader to follow is the caller’s to retry under the default policy', async () => {
  const starting = await replica(() => notReady);
  const c = client({ url: starting.url });
  await expect(c.cancel('j1', { actAs: 'beijing' })).rejects.toMatchObject({ statusCode: 503, code: 'QY_ERR_NOT_READY', message: 'The scheduler is not ready: starting' });
  expect(starting.seen).toHaveLength(1);
});

test('with retries, a request safe to repeat is tried again after a 503 until it is answered', async () => {
  const starting = await replica((n) => (n < 3 ? notReady : { status: 200, body: { items: [] } }));
  const c = client({ url: starting.url, retry: fastRetry });
  expect(await c.listJobs({ state: 'running', limit: 5 })).toEqual({ items: [] });
  expect(starting.seen.map((s) => s.path)).toEqual(Array(3).fill('/v1/jobs?state=running&limit=5'));
  expect(c.stats.retries).toBe(2);
});

test('a submission without an idempotency key is never repeated; with one it is', async () => {
  const starting = await replica((n) => (n < 2 ? notReady : accepted));
  const c = client({ url: starting.url, retry: fastRetry });
  await expect(c.submit(spec)).rejects.toMatchObject({ code: 'QY_ERR_NOT_READY' });
  expect(starting.seen).toHaveLength(1);
  expect(await c.submit(spec, { idempotencyKey: 'k' })).toMatchObject({ id: 'j1' });
  expect(starting.seen).toHaveLength(2);
});

test('a replica that does not answer is QY_ERR_UNREACHABLE, and the next one known is asked first after it', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const alive = await replica(() => ({ status: 200, body: { items: [] } }));
  const once = client({ url: [dead, alive.url] });
  const refused = await once.pools().catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(SchedulerApiError);
  expect(refused).toMatchObject({ statusCode: 0, code: 'QY_ERR_UNREACHABLE', details: { url: dead } });
  expect(((refused as Error).cause as { code: string }).code).toBe('ECONNREFUSED');
  expect(await once.pools()).toEqual([]);
  // With retries the one call gets through.
  const patient = client({ url: [dead, alive.url], retry: fastRetry });
  expect(await patient.pools()).toEqual([]);
});

test('an error answer without the API’s body is QY_ERR_UNKNOWN, with the text kept', async () => {
  const proxy = await replica(() => ({ status: 502, body: '<html>bad gateway</html>', raw: true }));
  const c = client({ url: proxy.url });
  await expect(c.job('j1')).rejects.toMatchObject({ statusCode: 502, code: 'QY_ERR_UNKNOWN', message: 'GET /v1/jobs/j1: HTTP 502', details: { responseText: '<html>bad gateway</html>' } });
});

test('a request sent to one replica is not redirected: the standby’s answer comes back as it is', async () => {
  const standby = await replica(() => ({ status: 503, body: { code: 'QY_ERR_NOT_LEADER', message: 'standby', statusCode: 503 }, headers: { 'x-qy-leader': 'http://127.0.0.1:1' } }));
  const c = client({ url: standby.url });
  const res = await c.send('POST', '/v1/jobs', { body: spec, url: standby.url });
  expect([res.status, res.headers.get('x-qy-leader'), (res.body as { code: string }).code]).toEqual([503, 'http://127.0.0.1:1', 'QY_ERR_NOT_LEADER']);
});

test('backoff doubles from the first delay up to the cap, never below half of it', () => {
  const policy = { attempts: 10, initialDelayMs: 100, maxDelayMs: 1000, deadlineMs: 0 };
  for (const [attempt, full] of [
    [1, 100],
    [2, 200],
    [4, 800],
    [8, 1000],
  ]) {
    for (let i = 0; i < 20; i++) {
      const ms = backoffMs(policy, attempt);
      expect(ms).toBeGreaterThanOrEqual(full / 2);
      expect(ms).toBeLessThanOrEqual(full);
    }
  }
});
