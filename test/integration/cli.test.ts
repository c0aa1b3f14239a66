import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';
import { waitUntil } from '../helpers/api';

const run = promisify(execFile);
let nats: LocalNatsServer;
let s: TestScheduler;
let agent: Agent;
const dir = mkdtempSync(join(tmpdir(), 'qy-cli-'));

/** Runs the qy CLI as tenant city-a (or `as` another caller); resolves with stdout, or the exit code and stderr. */
async function qy(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return qyAs('city-a', ...args);
}

async function qyAs(who: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/qy.ts', '--server', s.url, ...args], { env: { ...process.env, QY_TOKEN: s.tokens[who] } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url);
  agent = await startAgent(nats.url, 'cli', [testNode('cli-1')]);
  await waitForNodes(s.operator, ['cli-1']);
});

afterAll(async () => {
  await s?.close();
  await agent?.stop();
  await nats?.dispose();
});

test('qy submits a YAML job file, shows it, lists it and reads its log', async () => {
  const file = join(dir, 'job.yaml');
  writeFileSync(file, ['name: hello', 'pool: general', 'resources:', '  cpuMillis: 500', '  memBytes: 1048576', 'command: [sh, -c, "echo hello from $QY_NODE_ID"]', ''].join('\n'));
  const submitted = await qy('submit', file);
  expect(submitted.code).toBe(0);
  const [id] = submitted.stdout.trim().split(' ');
  await s.api.waitFor(id, ['succeeded']);

  const shown = await qy('get', id);
  expect(shown.stdout).toMatch(new RegExp(`id:\\s+${id} \\(hello\\)`));
  expect(shown.stdout).toMatch(/state:\s+succeeded \(exit 0\)/);
  expect(shown.stdout).toMatch(/TASK\s+NODE\s+CPU/);

  const listed = JSON.parse((await qy('--json', 'list', '--state', 'succeeded')).stdout) as { items: { id: string }[] };
  expect(listed.items.map((j) => j.id)).toContain(id);
  expect((await qy('log', id)).stdout.trim()).toBe('hello from cli-1');
});

test('qy cancels, shows nodes and pools, cordons and drains', async () => {
  const file = join(dir, 'sleep.json');
  writeFileSync(file, JSON.stringify({ pool: 'general', resources: { cpuMillis: 500, memBytes: 1048576 }, command: ['sleep', '30'] }));
  const id = (await qy('submit', file)).stdout.trim().split(' ')[0];
  await s.api.waitFor(id, ['running']);
  expect((await qy('cancel', id)).stdout).toMatch(new RegExp(`^${id} (cancelling|cancelled)`));
  await s.api.waitFor(id, ['cancelled']);

  expect((await qyAs('ops', 'nodes')).stdout).toMatch(/NODE\s+POOL\s+STATE[\s\S]*cli-1\s+general\s+ready/);
  expect((await qy('pools')).stdout).toMatch(/general\s+1 ready/);
  expect((await qyAs('ops', 'cordon', 'cli-1')).stdout.trim()).toBe('cli-1 cordoned');
  expect((await qyAs('ops', 'drain', 'cli-1')).stdout.trim()).toBe('cli-1 cordoned, draining');
  expect((await qyAs('ops', 'uncordon', 'cli-1')).stdout.trim()).toBe('cli-1 ready');
  const denied = await qy('nodes');
  expect(denied.code).toBe(1);
  expect(denied.stderr.trim()).toBe('qy: QY_ERR_FORBIDDEN: Forbidden: tenant city-a may not call GET /v1/nodes');
  const ready = await qyAs('ops', 'remove-node', 'cli-1');
  expect(ready.code).toBe(1);
  expect(ready.stderr.trim()).toBe('qy: QY_ERR_NODE_NOT_REMOVABLE: Node cli-1 cannot be removed: it is ready; only a down node can be removed (drain it, stop its agent and wait QY_DOWN_AFTER_MS)');
});

test('qy remove-node forgets a down node', async () => {
  const spare = await startAgent(nats.url, 'cli-spare', [testNode('cli-spare-1')], 'virtual');
  await waitForNodes(s.operator, ['cli-spare-1']);
  await spare.stop();
  await waitUntil(async () => ((await s.operator.request<{ state: string }>('GET', '/v1/nodes/cli-spare-1')).body.state === 'down' ? true : undefined), 20_000, () => 'cli-spare-1 never went down');
  expect((await qyAs('ops', 'remove-node', 'cli-spare-1')).stdout.trim()).toBe('cli-spare-1 removed (it was down)');
  expect((await s.operator.request('GET', '/v1/nodes/cli-spare-1')).status).toBe(404);
});

test('qy reports API errors with their code and exits non-zero', async () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'pool: quantum\nresources: {cpuMillis: 1, memBytes: 0}\n');
  const res = await qy('submit', bad);
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(/^qy: QY_ERR_VALIDATION: Invalid request: body\.pool: /);
  const missing = await qy('get', 'nope');
  expect(missing.stderr.trim()).toBe('qy: QY_ERR_JOB_NOT_FOUND: Job nope not found');
});

test('qy history lists the jobs of a window as sacct does, in table, JSON and CSV', async () => {
  const file = join(dir, 'history.json');
  writeFileSync(file, JSON.stringify({ name: 'etl, "nightly"', pool: 'general', resources: { cpuMillis: 500, memBytes: 1048576 }, command: ['sh', '-c', 'exit 3'] }));
  const id = (await qy('submit', file)).stdout.trim().split(' ')[0];
  await s.api.waitFor(id, ['failed']);

  const json = JSON.parse((await qy('history', '--since', '1h', '-o', 'json')).stdout) as { items: { id: string; state: string; exitCode: number | null; name: string }[] };
  expect(json.items.find((r) => r.id === id)).toMatchObject({ state: 'failed', exitCode: 3, name: 'etl, "nightly"' });
  const table = (await qy('history', '--state', 'failed')).stdout;
  expect(table).toMatch(/^JOBID\s+NAME\s+TENANT\s+POOL\s+STATE\s+SUBMIT\s+START\s+END\s+ELAPSED\s+ATTEMPTS\s+EXITCODE\s+NODELIST/);
  expect(table).toMatch(new RegExp(`${id}\\s+etl, "nightly"\\s+city-a\\s+general\\s+failed\\s.*\\s3\\s+cli-1`));
  const csv = (await qy('history', '--pool', 'general', '--since', new Date(Date.now() - 3_600_000).toISOString(), '-o', 'csv')).stdout.split('\r\n');
  expect(csv[0]).toBe('id,name,tenant,pool,priorityClass,state,tasks,submittedAt,startedAt,finishedAt,elapsedSeconds,attempts,exitCode,signal,nodeList,reason');
  expect(csv.find((l) => l.startsWith(`${id},`))).toMatch(new RegExp(`^${id},"etl, ""nightly""",city-a,general,normal,failed,1,`));

  const bad = await qy('history', '--since', 'yesterday-ish');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/^qy: "yesterday-ish" is not a time: give now, an age/);
  expect((await qy('history', '-o', 'xml')).stderr.trim()).toBe('qy: --output must be one of table, json, csv');
});

test('qy green shows the signal, the forecaster and its errors (a dash where not yet measured), as a table or JSON', async () => {
  // The first observation waits for a node to be ready (tried every 5 s from the scheduler's start).
  await waitUntil(async () => ((await s.operator.request<{ forecaster: { observedSince?: string } }>('GET', '/v1/green')).body.forecaster.observedSince ? true : undefined), 20_000);
  const shown = await qy('green');
  expect(shown.code).toBe(0);
  expect(shown.stdout).toMatch(/^signal: +\d+ gCO2\/kWh \(green-share\); grid 550$/m);
  expect(shown.stdout).toMatch(/^forecaster: blend, learning since \d{4}-/m);
  expect(shown.stdout).toMatch(/^AHEAD +0\.5h +1h +2h .* 48h$/m);
  expect(shown.stdout).toMatch(/^ERROR +- +- /m);
  const json = JSON.parse((await qy('--json', 'green', '--hours', '2')).stdout) as { forecaster: { errors: { aheadHours: number; gPerKwh: number | null }[] }; forecast: unknown[] };
  expect(json.forecaster.errors.map((e) => e.aheadHours)).toEqual([0.5, 1, 2, 3, 6, 9, 12, 18, 24, 36, 48]);
  const bad = await qy('green', '--hours', 'soon');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('--hours: soon is not a number of hours');
});
