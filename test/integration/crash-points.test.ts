import { afterEach, describe, expect, test } from 'vitest';
import { openArchive } from '../../src/archive';
import { FAILPOINTS, type Failpoint } from '../../src/failpoints';
import { scrapeMetric } from '../../harness/history';
import { startNatsServer } from '../../harness/nats-server';
import { startPostgres } from '../../harness/postgres';
import type { JobSpecInput } from '../../src/protocol';
import { freePort } from '../../harness/ports';
import { waitUntil } from '../helpers/api';
import { spawnScheduler, spawnVirtualNodeAgent, testTenantsFile } from '../helpers/stack';

const GiB = 1024 ** 3;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/** Snapshots every second and compaction right below them, finished jobs let go after a second: each point comes soon. */
const BOUNDED = { QY_SNAPSHOT_EVERY_ENTRIES: '100', QY_SNAPSHOT_INTERVAL_MS: '1000', QY_COMPACTION_MARGIN_ENTRIES: '0', QY_JOB_RETENTION_MS: '1000' };
/**
 * Unhurried node liveness: with the test stack's 1.5 s down threshold a busy CI machine can delay the agent's
 * heartbeats long enough to declare its nodes down and requeue their jobs (a clean CI run saw 190 jobs with a
 * second attempt), which is not what this test is about; kills of the scheduler are.
 */
const UNHURRIED_LIVENESS = { QY_SUSPECT_AFTER_MS: '10000', QY_DOWN_AFTER_MS: '20000' };
const quick = (i: number): JobSpecInput => ({ name: `crash-${i}`, pool: 'general', resources: { cpuMillis: 500, memBytes: GiB }, durationSeconds: 1 });

describe('kill -9 at each step of keeping state bounded', () => {
  test('killed while storing a snapshot, before and during compaction, and in the middle of an archive batch: each job ends once, is archived once, metered once, and the audit chain holds', async () => {
    const [nats, pg] = await Promise.all([startNatsServer(), startPostgres({ durable: false })]);
    cleanups.push(() => nats.dispose(), () => pg.dispose());
    const tenants = testTenantsFile();
    const env = { ...BOUNDED, ...UNHURRIED_LIVENESS, QY_DATABASE_URL: pg.url };
    const agent = spawnVirtualNodeAgent(nats.url, 4, 'cp');
    cleanups.push(() => agent.stop());
    let port: number | undefined;
    const acked: string[] = [];
    let n = 0;

    const points: Failpoint[] = [FAILPOINTS.archiveBatchInserted, FAILPOINTS.snapshotEncoded, FAILPOINTS.archiveBatchCommitted, FAILPOINTS.snapshotStored, FAILPOINTS.jobLogCompacted];
    for (const point of points) {
      // A replica armed at this point, fed jobs until it reaches it and dies.
      // Not waited for: archive batches are written at start too, and the replica may die before it is ready.
      const s = await spawnScheduler(nats.url, port ?? (await freePort()), { ...env, QY_FAILPOINTS: point }, tenants, { noWait: true });
      cleanups.push(() => s.kill9());
      port = Number(new URL(s.url).port);
      const died = () => s.child.exitCode !== null || s.child.signalCode !== null;
      await waitUntil(
        async () => {
          if (died()) return true;
          const batch = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => s.api.submit(quick(n + i))));
          n += 10;
          for (const r of batch) if (r.status === 'fulfilled') acked.push(r.value);
          return died() || undefined;
        },
        90_000,
        () => `the scheduler never reached ${point}:\n${s.output().slice(-3000)}`,
      );
      expect(s.child.signalCode).toBe('SIGKILL');
      expect(s.output()).toContain(`failpoint ${point}`);
    }

    // Unarmed: everything acknowledged before any of the kills ends, once.
    const last = await spawnScheduler(nats.url, port, env, tenants);
    cleanups.push(() => last.stop());
    expect(acked.length).toBeGreaterThan(10);
    for (const id of acked) expect((await last.api.waitFor(id, ['succeeded', 'failed', 'cancelled'], 60_000)).state).toBe('succeeded');
    // …and is archived once, with one attempt, and its usage metered once (segments are keyed per attempt, task and hour).
    const archive = openArchive({ url: pg.url });
    cleanups.push(() => archive.close());
    // Waited for by id, not by count: a submission stored just before a kill, its answer lost, is a job too, so the
    // archive may hold more than was acknowledged, and a count can reach the acknowledged number while the last
    // acknowledged jobs are still on their way (a CI run saw 9 unacknowledged jobs archived and 2 acknowledged ones
    // not yet). Then until the scheduler is quiet, so that the jobs and their usage below are read when both
    // have been written.
    const archivedIds = async () => new Set((await archive.db.query<{ id: string }>('SELECT id FROM archived_jobs')).rows.map((r) => r.id));
    await waitUntil(
      async () => {
        const ids = await archivedIds();
        return acked.every((id) => ids.has(id)) || undefined;
      },
      60_000,
      async () => {
        const ids = await archivedIds();
        return `acknowledged jobs never archived: ${acked.filter((id) => !ids.has(id)).slice(0, 10).join(', ')}`;
      },
    );
    const busy = async () => ({
      pending: await scrapeMetric(last.url, 'qy_jobs_pending'),
      running: await scrapeMetric(last.url, 'qy_jobs_running'),
      buffered: await scrapeMetric(last.url, 'qy_archive_buffered_records'),
    });
    // Ended jobs are offered to the archive on the state keeper's next round, their usage as it is metered:
    // quiet, and every metered job's row there too (a bug that never archives one times out here, saying which).
    const unarchivedMetered = async () => {
      const ids = await archivedIds();
      return (await archive.db.query<{ job_id: string }>('SELECT DISTINCT job_id FROM usage_segments')).rows.map((r) => r.job_id).filter((id) => !ids.has(id));
    };
    await waitUntil(
      async () => {
        const b = await busy();
        return (b.pending + b.running + b.buffered === 0 && (await unarchivedMetered()).length === 0) || undefined;
      },
      60_000,
      async () => `the scheduler never became quiet: ${JSON.stringify(await busy())}; metered, not archived: ${(await unarchivedMetered()).slice(0, 10).join(', ')}`,
    );
    const jobs = (await archive.db.query<{ id: string; state: string; attempts: number }>('SELECT id, state, attempts FROM archived_jobs')).rows;
    expect(jobs.map((j) => j.id)).toEqual(expect.arrayContaining(acked));
    expect(jobs.filter((j) => j.state !== 'succeeded' || j.attempts !== 1)).toEqual([]);
    const metered = (await archive.db.query<{ job_id: string; attempts: number }>('SELECT job_id, count(DISTINCT attempt_id)::int AS attempts FROM usage_segments GROUP BY job_id')).rows;
    expect(metered.filter((m) => m.attempts !== 1)).toEqual([]);
    expect(metered.map((m) => m.job_id).sort()).toEqual(jobs.map((j) => j.id).sort());
    // The chain across the archive and the live tail verifies.
    const verified = await last.operator.request<{ ok: boolean }>('GET', '/v1/audit/verify');
    expect(verified.body).toMatchObject({ ok: true });
  }, 400_000);
});
