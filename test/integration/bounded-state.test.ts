import { afterEach, describe, expect, test } from 'vitest';
import { openArchive } from '../../src/archive';
import { startNatsServer } from '../../harness/nats-server';
import { startPostgres } from '../../harness/postgres';
import { scrapeMetric } from '../../harness/history';
import { STREAMS, type JobSpecInput, type JobView } from '../../src/protocol';
import { connectNats } from '../../src/store/nats';
import { SnapshotStore } from '../../src/store/snapshot-store';
import { jetstreamManager } from '@nats-io/jetstream';
import { waitUntil, type ApiClient } from '../helpers/api';
import { spawnScheduler, spawnVirtualNodeAgent } from '../helpers/stack';

const GiB = 1024 ** 3;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/** Snapshots often, compaction right below them: a short test goes through several of each. */
const BOUNDED = { QY_SNAPSHOT_EVERY_ENTRIES: '200', QY_SNAPSHOT_INTERVAL_MS: '1000', QY_COMPACTION_MARGIN_ENTRIES: '0' };

const quick = (i: number, seconds = 0): JobSpecInput => ({ name: `history-${i}`, pool: 'general', resources: { cpuMillis: 500, memBytes: GiB }, durationSeconds: seconds });

const metric = scrapeMetric;

/** How many entries QY_JOBS holds, and its last position (compaction removes entries, not positions). */
async function jobLogSize(natsUrl: string): Promise<{ messages: number; lastSeq: number }> {
  const nc = await connectNats(natsUrl, 'test-reader');
  try {
    const info = await (await jetstreamManager(nc)).streams.info(STREAMS.jobs);
    return { messages: info.state.messages, lastSeq: info.state.last_seq };
  } finally {
    await nc.close();
  }
}

async function submitAll(api: ApiClient, specs: JobSpecInput[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < specs.length; i += 20) ids.push(...(await Promise.all(specs.slice(i, i + 20).map((s) => api.submit(s)))));
  return ids;
}

async function states(api: ApiClient, ids: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const id of ids) out[id] = (await api.job(id)).state;
  return out;
}

describe('bounded state: snapshots, a compacted job log', () => {
  test('a restarted scheduler loads the newest snapshot and replays only the log after it; what snapshots cover is compacted away, and nothing is lost', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const first = await spawnScheduler(nats.url, undefined, BOUNDED);
    cleanups.push(() => first.kill9());
    const agent = spawnVirtualNodeAgent(nats.url, 8, 'bs');
    cleanups.push(() => agent.stop());
    await waitUntil(async () => ((await first.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length >= 8 ? true : undefined), 20_000);

    const history = await submitAll(first.api, Array.from({ length: 300 }, (_, i) => quick(i)));
    for (const id of history) await first.api.waitFor(id, ['succeeded']);
    // Snapshots go on while the history settles; the log is compacted below the second newest one. A
    // snapshot is due only once the log has moved, so on a busy machine that took few snapshots during the
    // burst the bound would stay where it was: a job now and then keeps the log moving, as a cluster's does.
    let nudges = 0;
    await waitUntil(
      async () => {
        const size = await jobLogSize(nats.url);
        if (size.messages < size.lastSeq - 300) return true;
        await first.api.submit(quick(5000 + nudges++));
        return undefined;
      },
      60_000,
      async () => `not compacted: ${JSON.stringify(await jobLogSize(nats.url))}, below ${await metric(first.url, 'qy_job_log_compacted_below_seq')}, snapshots ${await metric(first.url, 'qy_state_snapshots_total{result="stored"}')} at ${await metric(first.url, 'qy_state_snapshot_seq')}\n${first.output().slice(-3000)}`,
    );
    // Live work across the crash: some running, some waiting.
    const live = await submitAll(first.api, Array.from({ length: 40 }, (_, i) => ({ ...quick(1000 + i, 3), resources: { cpuMillis: 4000, memBytes: GiB } })));
    await waitUntil(async () => ((await first.api.job(live[0])).state === 'running' ? true : undefined), 10_000);
    const before = await states(first.api, history);
    await first.kill9();

    const second = await spawnScheduler(nats.url, Number(new URL(first.url).port), BOUNDED, first.tenants);
    cleanups.push(() => second.stop());
    // Every rebuild (at start, then on taking up leadership) starts from a snapshot, none from the whole log.
    expect(await metric(second.url, 'qy_state_rebuilds_from_total{source="snapshot"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(second.url, 'qy_state_rebuilds_from_total{source="log"}')).toBe(0);
    expect(await states(second.api, history)).toEqual(before);
    const finished: JobView[] = [];
    for (const id of live) finished.push(await second.api.waitFor(id, ['succeeded', 'failed', 'cancelled'], 60_000));
    expect(finished.filter((v) => v.state !== 'succeeded')).toEqual([]);
  }, 180_000);

  test('a corrupt newest snapshot is set aside: the rebuild falls back to the one before, says so, and loses nothing', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const first = await spawnScheduler(nats.url, undefined, BOUNDED);
    cleanups.push(() => first.kill9());
    const agent = spawnVirtualNodeAgent(nats.url, 4, 'bc');
    cleanups.push(() => agent.stop());
    await waitUntil(async () => ((await first.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length >= 4 ? true : undefined), 20_000);
    const ids = await submitAll(first.api, Array.from({ length: 250 }, (_, i) => quick(i)));
    for (const id of ids) await first.api.waitFor(id, ['succeeded']);
    // A snapshot is taken when the scheduler is quiet and the log has moved since the last one: on a busy
    // machine the burst above may leave a single snapshot, taken after it, and an idle log never a second.
    // A job now and then keeps the log moving, as a cluster's does.
    let nudges = 0;
    await waitUntil(
      async () => {
        if ((await metric(first.url, 'qy_state_snapshots_total{result="stored"}')) >= 2) return true;
        await first.api.submit(quick(5000 + nudges++));
        return undefined;
      },
      30_000,
      async () => `fewer than two snapshots (failed: ${await metric(first.url, 'qy_state_snapshots_total{result="failed"}')})\n${first.output()}`,
    );
    await first.kill9();

    // The newest snapshot is damaged where it is stored.
    const nc = await connectNats(nats.url, 'test-corrupter');
    const store = await SnapshotStore.open(nc, 1);
    const [newest] = await store.positions();
    await store.save(newest + 1, new TextEncoder().encode('not a snapshot'));
    await nc.close();

    const second = await spawnScheduler(nats.url, Number(new URL(first.url).port), BOUNDED, first.tenants);
    cleanups.push(() => second.stop());
    expect(await metric(second.url, 'qy_state_snapshot_load_failures_total{reason="corrupt"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(second.url, 'qy_state_rebuilds_from_total{source="snapshot"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(second.url, 'qy_state_rebuilds_from_total{source="log"}')).toBe(0);
    expect(Object.values(await states(second.api, ids)).every((s) => s === 'succeeded')).toBe(true);
  }, 180_000);
});

describe('retention: finished jobs leave memory once archived', () => {
  test('jobs that ended longer ago than the retention leave memory, and each is in the archive exactly once', async () => {
    const [nats, pg] = await Promise.all([startNatsServer(), startPostgres({ durable: false })]);
    cleanups.push(() => nats.dispose(), () => pg.dispose());
    const s = await spawnScheduler(nats.url, undefined, { ...BOUNDED, QY_DATABASE_URL: pg.url, QY_JOB_RETENTION_MS: '1000' });
    cleanups.push(() => s.stop());
    const agent = spawnVirtualNodeAgent(nats.url, 4, 'rt');
    cleanups.push(() => agent.stop());
    await waitUntil(async () => ((await s.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length >= 4 ? true : undefined), 20_000);
    // A second of run each: a task of no time has no usage to meter.
    const ids = await submitAll(s.api, Array.from({ length: 120 }, (_, i) => quick(i, 1)));
    // Jobs may leave memory a second after they end: this test reads the archive, not the API.
    await waitUntil(async () => ((await metric(s.url, 'qy_jobs_in_memory')) === 0 ? true : undefined), 60_000, () => 'finished jobs stayed in memory');
    expect(await metric(s.url, 'qy_jobs_evicted_total')).toBe(ids.length);

    const archive = openArchive({ url: pg.url });
    try {
      const rows = await archive.db.query<{ id: string; state: string }>('SELECT id, state FROM archived_jobs');
      expect(rows.rows.map((r) => r.id).sort()).toEqual([...ids].sort());
      expect(rows.rows.every((r) => r.state === 'succeeded')).toBe(true);
      const usage = await archive.db.query<{ n: number }>('SELECT count(DISTINCT attempt_id)::int AS n FROM usage_segments');
      expect(usage.rows[0].n).toBe(ids.length);
    } finally {
      await archive.close();
    }
  }, 180_000);
});
