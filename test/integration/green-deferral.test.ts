import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startAgent, startScheduler, testNode, waitForNodes, waitForPendingReason, type TestScheduler } from '../helpers/stack';

let nats: LocalNatsServer;
let s: TestScheduler;
let agent: Agent;
/** The hour (UTC) when the grid is clean, six hours from now. */
const cleanHour = (new Date().getUTCHours() + 6) % 24;

beforeAll(async () => {
  // A daily carbon profile: 500 g/kWh, except 100 for two hours six hours from now. With it the scheduler
  // knows yesterday, so its same-time-yesterday forecast expects the clean hours again.
  const profile = ['time,carbon intensity', ...Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, '0')}:00,${h === cleanHour || h === (cleanHour + 1) % 24 ? 100 : 500}`)].join('\n');
  const file = join(mkdtempSync(join(tmpdir(), 'qy-carbon-')), 'carbon.csv');
  writeFileSync(file, profile);
  nats = await startNatsServer();
  s = await startScheduler(nats.url, { carbonFile: file });
  agent = await startAgent(nats.url, 'green', [testNode('g-1', 'general')]);
  await waitForNodes(s.operator, ['g-1']);
});

afterAll(async () => {
  await s?.close();
  await agent?.stop();
  await nats?.dispose();
});

const work = { pool: 'general' as const, resources: { cpuMillis: 100, memBytes: 0 }, command: ['true'], durationSeconds: 3600 };

test('a deferrable job waits for the cleaner hours it can still make; other jobs are not delayed', async () => {
  const deferred = await s.api.submit({ ...work, deferrable: { maxDelaySeconds: 12 * 3600 } });
  const urgent = await s.api.submit({ ...work, deferrable: { maxDelaySeconds: 0 } });
  const plain = await s.api.submit({ ...work });
  for (const id of [urgent, plain]) expect((await s.api.waitFor(id, ['succeeded', 'failed'])).state).toBe('succeeded');
  // Tried by a cycle: a reason other than "waiting for the next scheduling cycle". A held job leaves the queue
  // until its planned start (hours away), so no later cycle looks at it before then.
  await waitForPendingReason(s.api, deferred);
  const job = await s.api.job(deferred);
  expect(job.state).toBe('pending');
  const until = /until (\S+):/.exec(job.pendingReason!)?.[1];
  expect(job.pendingReason).toMatch(/^deferred for greener power until \S+: forecast \d+ gCO2\/kWh over its run, against \d+ if it started now \(latest start \S+\)$/);
  // Planned within the clean hours, and before its latest start.
  const start = new Date(until!);
  expect([cleanHour, (cleanHour + 1) % 24]).toContain(start.getUTCHours());
  expect(start.getTime()).toBeLessThanOrEqual(Date.now() + 12 * 3_600_000);
  await s.api.request('DELETE', `/v1/jobs/${deferred}`);
});
