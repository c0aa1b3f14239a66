import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { DASHBOARDS } from '../../dashboards/definitions';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startPrometheus, type LocalPrometheus } from '../../harness/prometheus';
import { waitUntil } from '../helpers/api';
import { startJsonServer, type JsonServer } from '../helpers/json-server';
import { startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

const run = promisify(execFile);
const MiB = 1024 ** 2;
let nats: LocalNatsServer;
let s: TestScheduler;
let prom: LocalPrometheus;
const agents: Agent[] = [];
let feed: JsonServer;

beforeAll(async () => {
  nats = await startNatsServer();
  // A carbon feed and a published forecast on loopback, and a carbon file whose week before now (replayed in a
  // loop) the forecaster learns from at start: the green panels have data to show.
  feed = await startJsonServer(({ path }) => {
    const now = Date.now();
    return { body: path === '/forecast' ? { forecast: [1, 2, 3].map((h) => ({ atMs: now + h * 3_600_000, gPerKwh: 200 - 10 * h })) } : { gPerKwh: 210 } };
  });
  const green = { carbonFile: 'test/fixtures/gb_ci-excerpt.csv', carbonUrl: `${feed.url}/now`, carbonForecastUrl: `${feed.url}/forecast` };
  s = await startScheduler(nats.url, { powerBudgetsKw: '{"general": 5, "intelligent": 20}', ...green }, {
    operators: ['ops'],
    tenants: [
      { name: 'city-a', requestsPerSecond: 10_000, quotas: { general: { cpuMillis: 64_000 }, intelligent: { gpus: 8 } } },
      { name: 'city-b', requestsPerSecond: 10_000 },
    ],
  });
  agents.push(await startAgent(nats.url, 'obs', [testNode('o-gen-1'), testNode('o-gen-2'), testNode('o-gpu-1', 'intelligent'), testNode('o-hpc-1', 'super')], 'virtual'));
  await waitForNodes(s.operator, ['o-gen-1', 'o-gen-2', 'o-gpu-1', 'o-hpc-1']);
  prom = await startPrometheus([new URL(s.url).host]);
  // A short workload: jobs that run, a GPU job, a failing job, and jobs that must wait (placement failures).
  const jobs = [
    ...Array.from({ length: 6 }, (_, i) => s.api.submit({ pool: 'general', resources: { cpuMillis: 2000, memBytes: MiB }, durationSeconds: 3 + (i % 3) })),
    s.api.submit({ pool: 'intelligent', resources: { cpuMillis: 2000, memBytes: MiB, gpus: 2 }, durationSeconds: 4 }),
    s.as('city-b').submit({ pool: 'general', resources: { cpuMillis: 1000, memBytes: MiB }, durationSeconds: 1, env: { QY_SIM_EXIT_CODE: '1' } }),
    s.as('city-b').submit({ pool: 'general', resources: { cpuMillis: 8000, memBytes: MiB }, durationSeconds: 30 }),
    s.as('city-b').submit({ pool: 'general', resources: { cpuMillis: 8000, memBytes: MiB }, durationSeconds: 30 }),
    s.as('city-b').submit({ pool: 'super', resources: { cpuMillis: 1000, memBytes: MiB }, walltimeSeconds: 60, durationSeconds: 2 }),
  ];
  await Promise.all(jobs);
  // Let the jobs run and end while Prometheus scrapes every second and evaluates the rules.
  await waitUntil(async () => ((await prom.query('qy_jobs_finished_total')).result.length >= 2 ? true : undefined), 30_000);
  // Until every recording rule has been evaluated over that data (rather than for a fixed time).
  const recorded = [...readFileSync('configs/prometheus/rules/recording.yml', 'utf8').matchAll(/^\s*- record: (\S+)$/gm)].map((m) => m[1]);
  expect(recorded.length).toBeGreaterThan(10);
  await waitUntil(
    async () => {
      for (const name of recorded) if ((await prom.query(name)).result.length === 0) return undefined;
      return true;
    },
    60_000,
    () => 'some recording rules have no data',
  );
});

afterAll(async () => {
  await feed?.close();
  await prom?.dispose();
  await s?.close();
  for (const a of agents) await a.stop();
  await nats?.dispose();
});

/** A panel query with Grafana's variables set as a dashboard with everything selected would set them. */
function substitute(expr: string, node: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m')
    .replaceAll('"$pool"', '".*"')
    .replaceAll('=~"$tenant"', '=~".*"')
    .replaceAll('"$node"', `"${node}"`)
    .replace(/pool="\$pool"/g, 'pool="general"');
}

describe('the metrics a real Prometheus scrapes', () => {
  test('promtool check metrics finds nothing to complain about on a scrape', async () => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const child = execFile('promtool', ['check', 'metrics']);
    child.stdin?.end(text);
    const out = await new Promise<{ code: number; output: string }>((resolve) => {
      let output = '';
      child.stdout?.on('data', (d) => (output += d));
      child.stderr?.on('data', (d) => (output += d));
      child.on('close', (code) => resolve({ code: code ?? 0, output }));
    });
    expect(out).toEqual({ code: 0, output: '' });
  });

  test('the scheduler is scraped and the rules are loaded', async () => {
    const up = await prom.query('up{job="qingyang-scheduler"}');
    expect((up.result[0] as { value: [number, string] }).value[1]).toBe('1');
    const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { health: string; name: string }[] }[] } };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBe(26);
    expect(all.filter((r) => r.health !== 'ok').map((r) => r.name)).toEqual([]);
  });

  test('every recording rule has data', async () => {
    const names = ['pool:qy_cpu_utilisation:ratio', 'pool:qy_memory_utilisation:ratio', 'pool:qy_gpu_utilisation:ratio', 'pool:qy_jobs_pending:sum', 'pool:qy_jobs_placed:rate1m', 'pool:qy_jobs_finished:rate1m', 'pool:qy_placement_duration_seconds:p50_1m', 'pool:qy_placement_duration_seconds:p99_1m', 'pool:qy_submit_to_running_seconds:p99_5m', 'pool:qy_green_power_share:ratio_5m', 'cluster:qy_green_power_share:ratio_5m', 'cluster:qy_carbon_grams:rate5m', 'tenant:qy_wait_seconds:p90_5m', 'tenant:qy_cpu_quota_use:ratio', 'tenant:qy_gpu_quota_use:ratio'];
    const empty: string[] = [];
    for (const name of names) if ((await prom.query(name)).result.length === 0) empty.push(name);
    expect(empty).toEqual([]);
  });

  const panels = DASHBOARDS.flatMap((d) => d.panels.flatMap((p) => p.queries.filter((q) => !q.influx).map((q) => ({ dashboard: d.title, panel: p.title, expr: q.expr }))));
  test.each(panels)('$dashboard: $panel — $expr', async ({ expr }) => {
    const data = await prom.query(substitute(expr, 'o-gpu-1'));
    expect(data.result.length, `no data for ${substitute(expr, 'o-gpu-1')}`).toBeGreaterThan(0);
  });
});

describe('configs/prometheus passes promtool', () => {
  test('check config and rules, and the alert tests', async () => {
    const config = await run('promtool', ['check', 'config', 'configs/prometheus/prometheus.yml']);
    expect(config.stdout).toMatch(/SUCCESS: configs\/prometheus\/prometheus.yml is valid/);
    const rules = await run('promtool', ['check', 'rules', 'configs/prometheus/rules/recording.yml', 'configs/prometheus/rules/alerts.yml']);
    expect(rules.stdout).toMatch(/SUCCESS: 15 rules found[\s\S]*SUCCESS: 11 rules found/);
    const tests = await run('promtool', ['test', 'rules', 'configs/prometheus/tests/alerts.test.yml']);
    expect(tests.stdout).toMatch(/SUCCESS/);
  });

  test('every alert has a test', async () => {
    const { readFileSync } = await import('node:fs');
    const alerts = [...readFileSync('configs/prometheus/rules/alerts.yml', 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tested = new Set([...readFileSync('configs/prometheus/tests/alerts.test.yml', 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    expect(alerts.filter((a) => !tested.has(a))).toEqual([]);
  });
});
