import { afterEach, expect, test } from 'vitest';
import { scrapeMetric } from '../../harness/history';
import { startNatsServer } from '../../harness/nats-server';
import { startPostgres } from '../../harness/postgres';
import { waitUntil } from '../helpers/api';
import { startAgent, startScheduler, testNode } from '../helpers/stack';

const GiB = 1024 ** 3;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/** Snapshots every second, finished jobs let go a second after the archive holds them; unhurried node liveness. */
const BOUNDED = { snapshotIntervalMs: 1000, snapshotEveryEntries: 100, compactionMarginEntries: 0, jobRetentionMs: 1000, suspectAfterMs: 10_000, downAfterMs: 20_000 };

test('a restarted scheduler goes on from the work mix of its last snapshot, not only from the jobs memory still holds', async () => {
  const [nats, pg] = await Promise.all([startNatsServer(), startPostgres({ durable: false })]);
  cleanups.push(() => nats.dispose(), () => pg.dispose());
  const overrides = { ...BOUNDED, databaseUrl: pg.url };
  const first = await startScheduler(nats.url, overrides);
  cleanups.push(() => first.close());
  const agent = await startAgent(nats.url, 'mix-agent', [testNode('mx1'), testNode('mx2')], 'virtual');
  cleanups.push(() => agent.stop());

  // Jobs the green planner counts as they are offered; each ends, is archived and let go.
  const ids: string[] = [];
  for (let i = 0; i < 24; i++) ids.push(await first.api.submit({ name: `mix-${i}`, pool: 'general', resources: { cpuMillis: 500 + 250 * (i % 4), memBytes: GiB }, durationSeconds: 1 }));
  for (const id of ids) expect((await first.api.waitFor(id, ['succeeded', 'failed', 'cancelled'], 60_000)).state).toBe('succeeded');
  const table = first.scheduler.store.table;
  await waitUntil(() => (ids.every((id) => !table.jobs.has(id)) ? true : undefined), 60_000, () => `jobs still in memory: ${ids.filter((id) => table.jobs.has(id)).join(', ')}`);
  // A snapshot captured after they were let go (one is due by time after any eviction): a snapshot stored
  // after they were let go may have been captured before (a CI run loaded all 24 back from one), so the
  // last one stored must hold no job.
  const stored = 'qy_state_snapshots_total{result="stored"}';
  const storedBefore = await scrapeMetric(first.url, stored);
  const snapshotted = async () => ({ stored: await scrapeMetric(first.url, stored), jobs: await scrapeMetric(first.url, 'qy_state_snapshot_jobs') });
  await waitUntil(
    async () => {
      const now = await snapshotted();
      return now.stored > storedBefore && now.jobs === 0 ? true : undefined;
    },
    30_000,
    async () => `no snapshot without the jobs after they were let go: ${JSON.stringify(await snapshotted())} (stored before: ${storedBefore})`,
  );
  const counted = first.scheduler.green.planner.serializeMix();
  expect(Object.keys(counted)).toEqual(['general']);
  expect(counted.general.all).toBeGreaterThan(0);
  await agent.stop();
  await first.close();

  // Memory holds none of the jobs now: without the snapshot's mix, the planner would know nothing of them.
  // Started, it has rebuilt once (from the snapshot); elected, it rebuilds again in the same process: checked
  // once it leads and is ready, after both.
  const second = await startScheduler(nats.url, overrides);
  cleanups.push(() => second.close());
  await waitUntil(async () => ((await fetch(`${second.url}/readyz?role=leader`)).ok ? true : undefined), 30_000, () => 'the second scheduler never led');
  expect(ids.filter((id) => second.scheduler.store.table.jobs.has(id))).toEqual([]);
  expect(second.scheduler.green.planner.serializeMix()).toEqual(counted);
}, 180_000);
