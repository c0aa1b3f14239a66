import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { consoleCsp, consoleFiles } from '../../scheduler/http/routes/ui';
import { freePort } from '../../harness/ports';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import type { GreenView, JobView } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

const MiB = 1024 ** 2;
let nats: LocalNatsServer;
let s: TestScheduler;
let agent: Agent;

/**
 * A daily carbon profile that is dirty now and clean three to five hours from now, so a deferrable job is
 * always planned for later whatever the time of day the test runs.
 */
function carbonProfile(nowMs: number): string {
  const hourNow = new Date(nowMs).getUTCHours();
  const rows = Array.from({ length: 24 }, (_, h) => {
    const ahead = (h - hourNow + 24) % 24;
    return `${String(h).padStart(2, '0')}:00,${ahead >= 3 && ahead <= 5 ? 50 : 600}`;
  });
  return ['time,carbon intensity', ...rows].join('\n');
}

beforeAll(async () => {
  nats = await startNatsServer();
  const carbonFile = join(mkdtempSync(join(tmpdir(), 'qy-carbon-')), 'carbon.csv');
  writeFileSync(carbonFile, carbonProfile(Date.now()));
  s = await startScheduler(nats.url, { carbonFile });
  agent = await startAgent(nats.url, 'console-api', [testNode('ca-gen-1'), testNode('ca-gen-2')], 'virtual');
  await waitForNodes(s.operator, ['ca-gen-1', 'ca-gen-2']);
});

afterAll(async () => {
  await s?.close();
  await agent?.stop();
  await nats?.dispose();
});

describe('the console is served at /ui', () => {
  test('/ui redirects to /ui/, which serves index.html with a strict Content-Security-Policy and no token', async () => {
    const redirect = await fetch(`${s.url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/ui/');
    const res = await fetch(`${s.url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('<script type="module" src="js/app.js">');
    expect(res.headers.get('content-security-policy')).toBe(consoleCsp(html));
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+';/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  test('every file the console loads is served, with a JavaScript type for modules', async () => {
    for (const { urlPath, file } of consoleFiles()) {
      const res = await fetch(`${s.url}${urlPath}`);
      expect(res.status, urlPath).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(file)), urlPath).toBe(true);
      if (/\.m?js$/.test(urlPath)) expect(res.headers.get('content-type'), urlPath).toMatch(/javascript/);
    }
  });

  test('nothing else of node_modules or the project is served', async () => {
    for (const path of ['/ui/vendor/preact.js', '/ui/vendor/..%2F..%2Fpackage.json', '/ui/..%2Fpackage.json', '/ui/%2e%2e/package.json', '/ui/vendor/__proto__']) {
      const res = await fetch(`${s.url}${path}`);
      expect(res.status, path).toBe(404);
    }
  });

  test('the files served add up to less than 300 KB gzipped', () => {
    const gzipBytes = consoleFiles().reduce((n, f) => n + gzipSync(readFileSync(f.file), { level: 9 }).length, 0);
    expect(gzipBytes).toBeLessThan(300 * 1024);
  });
});

describe('the reads the console needs', () => {
  test('GET /v1/whoami names the caller, and needs a token', async () => {
    expect((await s.api.request('GET', '/v1/whoami')).body).toEqual({ kind: 'tenant', name: 'city-a' });
    expect((await s.operator.request('GET', '/v1/whoami')).body).toEqual({ kind: 'operator', name: 'ops' });
    const anonymous = await s.api.as(undefined).request<{ code: string }>('GET', '/v1/whoami');
    expect([anonymous.status, anonymous.body.code]).toEqual([401, 'QY_ERR_UNAUTHENTICATED']);
  });

  test('GET /v1/jobs/:id gives the spec without environment values; lists leave it out', async () => {
    const id = await s.api.submit({ name: 'with-spec', pool: 'general', resources: { cpuMillis: 100, memBytes: MiB }, command: ['python3', 'run.py'], env: { DB_PASSWORD: 'secret' }, durationSeconds: 1 });
    const job = await s.api.job(id);
    expect(job.spec).toMatchObject({ command: ['python3', 'run.py'], envNames: ['DB_PASSWORD'], durationSeconds: 1, sandbox: false });
    expect(JSON.stringify(job)).not.toContain('secret');
    const list = await s.api.request<{ items: JobView[] }>('GET', '/v1/jobs');
    expect(list.body.items.find((j) => j.id === id)?.spec).toBeUndefined();
  });

  test('GET /v1/green: the signal, its forecast, pool power and deferred jobs with planned starts; a tenant sees its own', async () => {
    const id = await s.api.submit({ name: 'green-report', pool: 'general', resources: { cpuMillis: 100, memBytes: MiB }, durationSeconds: 600, deferrable: { maxDelaySeconds: 8 * 3600 } });
    const green = await waitUntil(async () => {
      const res = await s.operator.request<GreenView>('GET', '/v1/green');
      return res.body.deferred.some((d) => d.id === id) ? res.body : undefined;
    }, 10_000, () => 'the deferrable job was not deferred');
    expect(green.signal).toMatchObject({ source: 'carbon-file', gPerKwh: 600, gridGPerKwh: 600 });
    expect(green.forecast.length).toBeGreaterThan(90); // 24 hours in steps of 15 minutes
    // Each pool's booking share: as configured (0.2, the GPU pool 0) until an hour of arrivals has been watched.
    expect(green.pools.map((p) => [p.pool, p.deferralShare])).toEqual([['general', 0.2], ['intelligent', 0], ['super', 0.2]]);
    expect(green.pools.find((p) => p.pool === 'general')).toMatchObject({ nodes: 2 });
    const deferred = green.deferred.find((d) => d.id === id)!;
    expect(deferred).toMatchObject({ name: 'green-report', tenant: 'city-a', pool: 'general' });
    expect(Date.parse(deferred.plannedStartAt) - Date.now()).toBeGreaterThan(2 * 3600_000);
    expect(deferred.reason).toMatch(/^deferred for greener power until/);
    expect((await s.api.request<GreenView>('GET', '/v1/green')).body.deferred.map((d) => d.id)).toContain(id);
    expect((await s.as('city-b').request<GreenView>('GET', '/v1/green')).body.deferred).toEqual([]);
    const bad = await s.api.request<{ code: string }>('GET', '/v1/green?hours=1000');
    expect([bad.status, bad.body.code]).toEqual([400, 'QY_ERR_VALIDATION']);
  });

  test('GET /v1/audit/verify checks the whole chain (operators)', async () => {
    const res = await s.operator.request<{ ok: boolean; records: number; lastHash: string }>('GET', '/v1/audit/verify');
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(true);
    expect(res.body.records).toBeGreaterThanOrEqual(2);
    expect(res.body.lastHash).toMatch(/^[0-9a-f]{64}$/);
    const tenant = await s.api.request<{ code: string }>('GET', '/v1/audit/verify');
    expect([tenant.status, tenant.body.code]).toEqual([403, 'QY_ERR_FORBIDDEN']);
  });

  test('/v1/series: operators only; recording rules only; 404 QY_ERR_PROMETHEUS_NOT_CONFIGURED without Prometheus', async () => {
    const list = await s.operator.request<{ prometheus: boolean; series: string[] }>('GET', '/v1/series');
    expect(list.body.prometheus).toBe(false);
    expect(list.body.series).toContain('pool:qy_cpu_utilisation:ratio');
    const tenant = await s.api.request<{ code: string }>('GET', '/v1/series/pool:qy_cpu_utilisation:ratio');
    expect([tenant.status, tenant.body.code]).toEqual([403, 'QY_ERR_FORBIDDEN']);
    const off = await s.operator.request<{ code: string; message: string }>('GET', '/v1/series/pool:qy_cpu_utilisation:ratio');
    expect([off.status, off.body.code, off.body.message]).toEqual([404, 'QY_ERR_PROMETHEUS_NOT_CONFIGURED', 'No Prometheus is configured (QY_PROMETHEUS_URL)']);
    for (const name of ['up', 'sum(qy_jobs_running)', 'qy_jobs_running{pool="general"}']) {
      const res = await s.operator.request<{ code: string; message: string }>('GET', `/v1/series/${encodeURIComponent(name)}`);
      expect([res.status, res.body.code], name).toEqual([404, 'QY_ERR_UNKNOWN_SERIES']);
      expect(res.body.message).toContain('only the recording rules');
    }
    const bad = await s.operator.request<{ code: string }>('GET', '/v1/series/pool:qy_cpu_utilisation:ratio?minutes=1');
    expect([bad.status, bad.body.code]).toEqual([400, 'QY_ERR_VALIDATION']);
  });

  test('a Prometheus that does not answer is a 502 QY_ERR_PROMETHEUS_UNAVAILABLE, not a 500', async () => {
    // A standby replica on the same NATS, told of a Prometheus where nothing listens: it serves reads.
    const standby = await startScheduler(nats.url, { prometheusUrl: `http://127.0.0.1:${await freePort()}`, replicaId: 'console-standby' });
    try {
      const res = await standby.operator.request<{ code: string; message: string }>('GET', '/v1/series/pool:qy_cpu_utilisation:ratio');
      expect([res.status, res.body.code]).toEqual([502, 'QY_ERR_PROMETHEUS_UNAVAILABLE']);
      expect(res.body.message).toMatch(/^Prometheus did not answer: /);
    } finally {
      await standby.close();
    }
  });
});
