import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ArchiveReader, ArchiveWriter, openArchiveDatabase, type ArchiveWriterOptions } from '../../src/archive';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { waitUntil } from '../../harness/wait';
import type { TaskUsage } from '../../src/protocol';
import { auditChain, endedJob, freshDatabase, tableCounts } from './fixtures';

let cluster: LocalPostgres;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  cluster = await startPostgres({ durable: false });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await cluster?.dispose();
});

/** A writer on its own database (or on `db`), closed after the tests. */
async function writerOn(db?: pg.Pool, options: ArchiveWriterOptions = {}): Promise<{ db: pg.Pool; writer: ArchiveWriter; inserted: Record<string, number> }> {
  if (!db) {
    db = openArchiveDatabase({ url: await freshDatabase(cluster) });
    const pool = db;
    closers.push(() => pool.end());
  }
  const inserted: Record<string, number> = { job: 0, usage: 0, audit: 0 };
  const written = { written: (b: { insertedRows: Record<string, number> }) => Object.entries(b.insertedRows).forEach(([k, n]) => (inserted[k] += n)) };
  const writer = new ArchiveWriter(db, { retryInitialMs: 50, retryMaxMs: 300, lingerMs: 5, ...options, hooks: [written, ...[options.hooks ?? []].flat()] });
  closers.push(() => writer.close(0));
  writer.start();
  return { db, writer, inserted };
}

function usageOf(n: number, segments = 2): TaskUsage {
  return {
    jobId: endedJob(n).view.id,
    attemptId: `a${n}`,
    taskIndex: 0,
    tenant: 'beijing',
    pool: 'intelligent',
    nodeId: `node-${n % 3}`,
    billingClass: 'standard',
    segments: Array.from({ length: segments }, (_, i) => ({ hourStartMs: 1_790_000_000_000 + i * 3_600_000, runMs: 3_600_000, cpuMilliSeconds: 1000 * n, gpuMilliSeconds: { A800: 7 * n }, memMiBSeconds: n, energyMilliWh: 3 * n, greenMilliWh: n, carbonMg: 2 * n })),
  };
}

describe('ArchiveWriter', () => {
  test('the same records offered twice, before and after they are written, keep one row each', async () => {
    const { db, writer, inserted } = await writerOn();
    const audit = auditChain(20);
    const offer = () => {
      for (let n = 1; n <= 20; n++) {
        expect(writer.enqueueJob(endedJob(n))).toBe(true);
        expect(writer.enqueueUsage(usageOf(n))).toBe(true);
      }
      expect(writer.enqueueAudit(audit)).toBe(true);
    };
    offer();
    offer(); // still buffered: not buffered twice
    expect(writer.bufferedRecords()).toBe(60);
    expect(await writer.flush(20_000)).toBe(true);
    offer(); // written already: written again, and the database keeps the first row
    expect(await writer.flush(20_000)).toBe(true);
    expect(await tableCounts(db)).toEqual({ jobs: 20, segments: 40, audit: 20 });
    expect(inserted).toEqual({ job: 20, usage: 40, audit: 20 });
    expect(writer.archivedAuditSeq()).toBe(20);
  });

  test('two writers (two leaders, or a retry after a crash) with the same records keep one row each', async () => {
    const first = await writerOn();
    const second = await writerOn(first.db);
    const audit = auditChain(300);
    for (const { writer } of [first, second]) {
      for (let n = 1; n <= 300; n++) writer.enqueueJob(endedJob(n));
      for (let n = 1; n <= 300; n++) writer.enqueueUsage(usageOf(n, 3));
      writer.enqueueAudit(audit);
    }
    expect(await Promise.all([first.writer.flush(30_000), second.writer.flush(30_000)])).toEqual([true, true]);
    expect(await tableCounts(first.db)).toEqual({ jobs: 300, segments: 900, audit: 300 });
    // Between them they inserted each row once.
    expect({ job: first.inserted.job + second.inserted.job, usage: first.inserted.usage + second.inserted.usage, audit: first.inserted.audit + second.inserted.audit }).toEqual({ job: 300, usage: 900, audit: 300 });
  });

  test('the database stopped and restarted under a stream of records: nothing lost, nothing doubled, watermarks held meanwhile', async () => {
    const own = await startPostgres({ durable: false });
    closers.push(() => own.dispose());
    const db = openArchiveDatabase({ url: own.url });
    closers.push(() => db.end());
    const { writer } = await writerOn(db);
    const reader = new ArchiveReader(db);
    const audit = auditChain(5_000);
    let n = 0;
    let producing = true;
    // One finished job, its usage and an audit record per step, at job-log positions 1, 2, 3…
    const producer = (async () => {
      while (producing && n < audit.length) {
        n++;
        writer.enqueueJob(endedJob(n), { log: 'QY_JOBS', seq: n });
        writer.enqueueUsage(usageOf(n), { log: 'QY_JOBS', seq: n });
        writer.enqueueAudit([audit[n - 1]]);
        writer.markApplied('QY_JOBS', n);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await waitUntil(() => (writer.archivedThrough('QY_JOBS') >= 50 ? true : undefined), 20_000, () => `archived through ${writer.archivedThrough('QY_JOBS')}`);

    await own.stop();
    const stoppedAt = n;
    await waitUntil(() => (writer.isAvailable() === false && n > stoppedAt + 200 ? true : undefined), 20_000, () => `available ${writer.isAvailable()}, ${n - stoppedAt} offered since the stop`);
    // Down: the records wait in memory, the lag shows it, and the watermark stays where the database is.
    expect(writer.bufferedRecords()).toBeGreaterThan(0);
    await waitUntil(() => (writer.lagSeconds() > 0.1 ? true : undefined), 10_000);
    const heldAt = writer.archivedThrough('QY_JOBS');
    expect(heldAt).toBeLessThanOrEqual(stoppedAt);
    expect(writer.archivedAuditSeq()).toBeLessThanOrEqual(stoppedAt);
    await expect(reader.job(endedJob(1).view.id)).rejects.toMatchObject({ code: 'QY_ERR_ARCHIVE_UNAVAILABLE', statusCode: 503 });

    await own.restart();
    const restartedAt = n;
    await waitUntil(() => (n > restartedAt + 100 ? true : undefined), 20_000);
    producing = false;
    await producer;
    expect(await writer.flush(30_000)).toBe(true);

    expect(await tableCounts(db)).toEqual({ jobs: n, segments: 2 * n, audit: n });
    const { rows } = await db.query<{ id: string }>('SELECT id FROM archived_jobs ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => endedJob(i + 1).view.id));
    expect(writer.lagSeconds()).toBe(0);
    expect(writer.archivedThrough('QY_JOBS')).toBe(n);
    expect(writer.archivedAuditSeq()).toBe(n);
    await waitUntil(async () => ((await reader.watermarks()).get('QY_JOBS') === n ? true : undefined), 10_000);
    expect(await reader.verifyAudit([])).toMatchObject({ ok: true, records: n, archivedRecords: n });
  });

  test('the watermark waits for every record below it: offered, written, none refused', async () => {
    const { writer } = await writerOn(undefined, { maxBufferedRecords: 3 });
    writer.markApplied('QY_JOBS:general', 10);
    // Nothing of positions ≤ 10 is buffered: the log is archived through 10.
    expect(writer.archivedThrough('QY_JOBS:general')).toBe(10);
    expect(writer.archivedThrough('QY_JOBS:super')).toBe(0);
    writer.enqueueJob(endedJob(11), { log: 'QY_JOBS:general', seq: 11 });
    writer.enqueueJob(endedJob(12), { log: 'QY_JOBS:general', seq: 14 });
    writer.markApplied('QY_JOBS:general', 20);
    expect(writer.archivedThrough('QY_JOBS:general')).toBe(10);
    expect(await writer.flush(10_000)).toBe(true);
    expect(writer.archivedThrough('QY_JOBS:general')).toBe(20);
  });

  test('a full buffer refuses without waiting; the refused position holds the watermark until the record is taken', async () => {
    const refused: string[] = [];
    // A database that is not there: nothing is written, so the buffer fills.
    const db = openArchiveDatabase({ url: 'postgres://nobody:x@127.0.0.1:1/none', connectTimeoutMs: 200 });
    closers.push(() => db.end());
    const { writer } = await writerOn(db, { maxBufferedRecords: 3, hooks: { refused: (kind) => refused.push(kind) } });
    expect(writer.enqueueJob(endedJob(1), { log: 'L', seq: 1 })).toBe(true);
    expect(writer.enqueueUsage(usageOf(1), { log: 'L', seq: 2 })).toBe(true);
    expect(writer.enqueueAudit(auditChain(1))).toBe(true);
    expect(writer.isSaturated()).toBe(true);
    expect(writer.enqueueJob(endedJob(2), { log: 'L', seq: 3 })).toBe(false);
    expect(writer.enqueueAudit(auditChain(2).slice(1))).toBe(false);
    expect(refused).toEqual(['job', 'audit']);
    expect(writer.bufferedRecords()).toBe(3);
    writer.markApplied('L', 5);
    expect(writer.archivedThrough('L')).toBe(0);
    await waitUntil(() => (writer.isAvailable() === false ? true : undefined), 10_000);
  });

  test('refused records offered again once there is room move the watermark on', async () => {
    const { writer } = await writerOn(undefined, { maxBufferedRecords: 1, lingerMs: 60_000 });
    expect(writer.enqueueJob(endedJob(1), { log: 'L', seq: 1 })).toBe(true);
    expect(writer.enqueueJob(endedJob(2), { log: 'L', seq: 2 })).toBe(false);
    writer.markApplied('L', 2);
    expect(await writer.flush(10_000)).toBe(true);
    expect(writer.archivedThrough('L')).toBe(1);
    expect(writer.enqueueJob(endedJob(2), { log: 'L', seq: 2 })).toBe(true);
    expect(await writer.flush(10_000)).toBe(true);
    expect(writer.archivedThrough('L')).toBe(2);
  });

  test('lag is the age of the oldest record not yet written', async () => {
    let nowMs = 1_000_000;
    const db = openArchiveDatabase({ url: 'postgres://nobody:x@127.0.0.1:1/none', connectTimeoutMs: 200 });
    closers.push(() => db.end());
    const { writer } = await writerOn(db, { now: () => nowMs });
    expect(writer.lagSeconds()).toBe(0);
    writer.enqueueJob(endedJob(1));
    nowMs += 4_000;
    writer.enqueueJob(endedJob(2));
    nowMs += 2_500;
    expect(writer.lagSeconds()).toBe(6.5);
  });

  test('a record the database refuses is set aside; the others of its batch are written, and it holds the watermark', async () => {
    const failures: boolean[] = [];
    const { db, writer } = await writerOn(undefined, { lingerMs: 1_000, hooks: { failed: (_e, willRetry) => failures.push(willRetry) } });
    const bad = endedJob(2, { exitCode: 1.5 }); // not an integer: the database refuses the row
    writer.enqueueJob(endedJob(1), { log: 'L', seq: 1 });
    writer.enqueueJob(bad, { log: 'L', seq: 2 });
    writer.enqueueJob(endedJob(3), { log: 'L', seq: 3 });
    writer.markApplied('L', 3);
    await waitUntil(async () => ((await tableCounts(db)).jobs === 2 ? true : undefined), 10_000);
    expect(writer.parkedRecords()).toBe(1);
    expect(failures).toEqual([false]);
    expect(writer.archivedThrough('L')).toBe(1);
    expect(writer.lagSeconds()).toBeGreaterThan(0);
    expect(await writer.flush(100)).toBe(false);
  });

  test('a record that cannot be made into a row is set aside too, not retried for ever', async () => {
    const { db, writer } = await writerOn(undefined, { lingerMs: 1_000 });
    const broken = usageOf(2);
    (broken.segments[0] as unknown as { gpuMilliSeconds: unknown }).gpuMilliSeconds = { A800: 10n }; // JSON cannot hold a BigInt
    writer.enqueueUsage(usageOf(1));
    writer.enqueueUsage(broken);
    writer.enqueueUsage(usageOf(3));
    await waitUntil(async () => ((await tableCounts(db)).segments === 4 && writer.parkedRecords() === 1 ? true : undefined), 10_000);
    expect(writer.isAvailable()).toBe(true);
  });

  test('a job that has not ended is refused in the caller’s stack', async () => {
    const { writer } = await writerOn();
    const job = endedJob(1);
    expect(() => writer.enqueueJob({ ...job, view: { ...job.view, state: 'running', finishedAt: undefined } })).toThrow(/job j000000000001 is running: only jobs that have ended are archived/);
  });
});
