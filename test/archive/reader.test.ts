import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { JobTable } from '../../scheduler/state/job-table';
import { archivedJobOf, jobView } from '../../scheduler/state/views';
import { ArchiveReader, ArchiveWriter, isActiveInWindow, mergeJobPages, mergeUsages, openArchiveDatabase, type ArchivedJob } from '../../src/archive';
import { DEFAULT_PRICE_TABLE, billFor, disclosureReport, periodRange, summarize, type JobsServed } from '../../src/billing';
import { ClusterState, DEFAULT_POLICY, PendingQueue, placeJob } from '../../src/core';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { POOLS, jobSpecSchema, taskKey, type JobView, type Pool, type TaskUsage } from '../../src/protocol';
import { verifyChain } from '../../src/store/audit-log';
import { usagesArb } from '../billing/fixtures';
import { nodeSpec } from '../core/fixtures';
import { auditChain, endedJob, freshDatabase } from './fixtures';

let cluster: LocalPostgres;
let db: pg.Pool;
let writer: ArchiveWriter;
let reader: ArchiveReader;

beforeAll(async () => {
  cluster = await startPostgres({ durable: false });
  db = openArchiveDatabase({ url: await freshDatabase(cluster) });
  writer = new ArchiveWriter(db, { lingerMs: 5 });
  writer.start();
  reader = new ArchiveReader(db);
});

afterAll(async () => {
  await writer?.close(0);
  await db?.end();
  await cluster?.dispose();
});

async function archive(write: (w: ArchiveWriter) => void): Promise<void> {
  write(writer);
  expect(await writer.flush(30_000)).toBe(true);
}

describe('jobs from the archive', () => {
  test('a job reads back exactly as the scheduler showed it, with its spec and Idempotency-Key', async () => {
    // A job driven through the scheduler's own job table to its end, then archived as the lead will.
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n1'));
    const pending = new PendingQueue();
    const table = new JobTable(cluster, pending);
    const spec = jobSpecSchema.parse({ name: 'etl', pool: 'general', resources: { cpuMillis: 1000, memBytes: 0 }, env: { WEIRD: 'a\u0000b "c" \\d é' } });
    table.applySubmitted({ type: 'submitted', v: 1, jobId: 'jarchived0001', tenant: 'beijing', spec, submittedAtMs: 1_000, priority: 500, maxAttempts: 3, idempotencyKey: 'k-1' });
    const placed = placeJob(cluster, table.get('jarchived0001')!.sched, DEFAULT_POLICY);
    if (!placed.ok) throw new Error('expected a placement');
    table.applyPlaced({ type: 'placed', jobId: 'jarchived0001', attempt: 1, attemptId: 'jarchived0001-a1', placement: placed.placement, atMs: 2_000 });
    const report = { type: 'status' as const, nodeId: 'n1', jobId: 'jarchived0001', attemptId: 'jarchived0001-a1', taskIndex: 0 };
    table.applyStatus({ ...report, state: 'running', atMs: 3_000 });
    table.applyStatus({ ...report, state: 'failed', exitCode: 3, atMs: 9_000 });
    const job = table.get('jarchived0001')!;
    await archive((w) => w.enqueueJob(archivedJobOf(job, pending)));

    const read = await reader.job('jarchived0001');
    expect(read).toEqual({ view: jobView(job, pending), spec, idempotencyKey: 'k-1' });
    expect(read!.view).toMatchObject({ state: 'failed', exitCode: 3, reason: 'exited with code 3', finishedAt: new Date(9_000).toISOString() });
    expect(await reader.jobByIdempotencyKey('beijing', 'k-1')).toEqual(read);
    expect(await reader.jobByIdempotencyKey('shanghai', 'k-1')).toBeUndefined();
    expect(await reader.job('jnothere')).toBeUndefined();
    expect(await reader.archivedJobIds(['jarchived0001', 'jnothere'])).toEqual(new Set(['jarchived0001']));
    await db.query("DELETE FROM archived_jobs WHERE id = 'jarchived0001'"); // the listing tests below count every row
  });

  // 300 jobs of three tenants, three pools and three outcomes, one a minute, each running for 0 to 20 minutes.
  const jobs: ArchivedJob[] = Array.from({ length: 300 }, (_, i) =>
    endedJob(1000 + i, {
      tenant: ['beijing', 'shanghai', 'guangzhou'][i % 3],
      pool: POOLS[Math.floor(i / 3) % 3],
      state: (['succeeded', 'failed', 'cancelled'] as const)[Math.floor(i / 9) % 3],
      submittedAtMs: 1_800_000_000_000 + i * 60_000,
      finishedAtMs: 1_800_000_000_000 + i * 60_000 + (i % 21) * 60_000,
    }),
  );
  const t0 = 1_800_000_000_000;
  const filters = [
    {},
    { tenant: 'beijing' },
    { tenant: 'shanghai', state: 'failed' as const },
    { pool: 'super' as const },
    { sinceMs: t0 + 100 * 60_000 },
    { untilMs: t0 + 50 * 60_000 },
    { tenant: 'guangzhou', pool: 'general' as const, state: 'succeeded' as const, sinceMs: t0 + 30 * 60_000, untilMs: t0 + 200 * 60_000 },
    { tenant: 'nobody' },
  ];

  test.each(filters)('listed page by page in submission order, filtered as memory would be: %j', async (filter) => {
    await archive((w) => jobs.forEach((j) => w.enqueueJob(j)));
    const expected = jobs
      .map((j) => j.view)
      .filter((v) => (filter.tenant === undefined || v.tenant === filter.tenant) && (!('state' in filter) || v.state === filter.state) && (!('pool' in filter) || v.pool === filter.pool))
      .filter((v) => isActiveInWindow({ submittedAtMs: Date.parse(v.submittedAt), finishedAtMs: Date.parse(v.finishedAt!) }, filter))
      .map((v) => v.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await reader.listJobs({ ...filter, limit: 17, cursor });
      expect(page.items.length).toBeLessThanOrEqual(17);
      seen.push(...page.items.map((v) => v.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(expected);
    expect(pages).toBe(Math.max(1, Math.ceil(expected.length / 17)));
  });

  test('a value no stored text can hold is a bad request, not an internal error (a NUL byte: PostgreSQL refuses it)', async () => {
    for (const lookup of [() => reader.job('j\u0000'), () => reader.jobByIdempotencyKey('beijing', 'k\u0000'), () => reader.archivedJobIds(['j\u0000'])]) {
      await expect(lookup()).rejects.toMatchObject({ code: 'QY_ERR_VALIDATION', statusCode: 400, message: expect.stringMatching(/^Invalid request: the accounting archive cannot look up these values: invalid byte sequence for encoding "UTF8": 0x00$/) });
    }
  });

  test('pages of the archive and of memory merge into the pages of the whole', async () => {
    const views = jobs.map((j) => j.view);
    // Jobs 0..199 have left memory; 150..299 are still there (150..199 in both).
    const memory = views.slice(150);
    const memoryPage = (cursor: string | undefined, limit: number) => {
      const after = memory.filter((v) => cursor === undefined || v.id > cursor);
      return { items: after.slice(0, limit), nextCursor: after.length > limit ? after[limit - 1].id : undefined };
    };
    const seen: JobView[] = [];
    let cursor: string | undefined;
    do {
      const merged = mergeJobPages([await reader.listJobs({ limit: 23, cursor }), memoryPage(cursor, 23)], 23);
      seen.push(...merged.items);
      cursor = merged.nextCursor;
    } while (cursor);
    expect(seen.map((v) => v.id)).toEqual(views.map((v) => v.id));
  });

  test('sacct-style history lines', async () => {
    const page = await reader.history({ tenant: 'beijing', state: 'succeeded', limit: 2 }, 0);
    expect(page.items[0]).toEqual({
      id: jobs[0].view.id,
      name: 'job-1000',
      tenant: 'beijing',
      pool: 'general',
      priorityClass: 'normal',
      state: 'succeeded',
      tasks: 1,
      submittedAt: jobs[0].view.submittedAt,
      startedAt: jobs[0].view.startedAt,
      finishedAt: jobs[0].view.finishedAt,
      elapsedSeconds: 0,
      attempts: 1,
      exitCode: 0,
      signal: null,
      nodeList: 'node-1',
      reason: null,
    });
    expect(page.nextCursor).toBe(page.items[1].id);
  });

  test('jobs served in a period, by pool and outcome, as memory counts them', async () => {
    const fromMs = t0 + 40 * 60_000;
    const toMs = t0 + 190 * 60_000;
    const served: Partial<Record<Pool, JobsServed>> = {};
    for (const { view } of jobs) {
      const finishedAtMs = Date.parse(view.finishedAt!);
      if (finishedAtMs < fromMs || finishedAtMs >= toMs) continue;
      const s = (served[view.pool] ??= {});
      s[view.state] = (s[view.state] ?? 0) + 1;
    }
    expect(await reader.jobsServed(fromMs, toMs)).toEqual(served);
    // Jobs the caller counts from memory are left out.
    const inMemory = jobs.slice(100, 120).map((j) => j.view.id);
    const rest = await reader.jobsServed(fromMs, toMs, inMemory);
    const total = (x: Partial<Record<Pool, JobsServed>>) => Object.values(x).flatMap((s) => Object.values(s!)).reduce((a, b) => a + b, 0);
    expect(total(rest)).toBe(total(served) - inMemory.length);
  });
});

describe('usage, bills and disclosure from the archive', () => {
  const timeZone = DEFAULT_PRICE_TABLE.timeZoneOffsetMinutes;
  const periods = ['2026-10', '2026-11', '2026-10-31', '2026-11-01', '2026-11-02'];
  const capacity = { general: { nodes: 4, cores: 256, gpus: 0, gpuModels: [] }, intelligent: { nodes: 2, cores: 128, gpus: 16, gpuModels: ['A800'] } };
  /** What the ledger holds: one record per task, the first (generated usages may repeat a task). */
  const firstPerKey = (usages: TaskUsage[]) => {
    const seen = new Map<string, TaskUsage>();
    for (const u of usages) if (!seen.has(taskKey(u))) seen.set(taskKey(u), u);
    return [...seen.values()];
  };

  test('the same exact integers as from memory, for every period, tenant and pool', async () => {
    await fc.assert(
      fc.asyncProperty(usagesArb, fc.infiniteStream(fc.boolean()), async (generated, archivedFlags) => {
        const ledger = firstPerKey(generated);
        await db.query('TRUNCATE usage_segments');
        await archive((w) => generated.forEach((u) => w.enqueueUsage(u)));
        for (const period of periods) {
          const range = periodRange(period, timeZone);
          const window = { fromMs: range.fromMs, toMs: range.toMs };
          expect(await reader.usageSummary(period, {}, timeZone)).toEqual({ period, interval: range.interval, ...summarize(ledger, window) });
          for (const tenant of ['beijing', 'x,"y"']) {
            expect(await reader.bill(tenant, period, DEFAULT_PRICE_TABLE)).toEqual(billFor(tenant, period, ledger, DEFAULT_PRICE_TABLE));
            expect(await reader.usageSummary(period, { tenant, pool: 'intelligent' }, timeZone)).toMatchObject(summarize(ledger, { ...window, tenant, pool: 'intelligent' }));
          }
          expect(await reader.disclosure(period, capacity, timeZone)).toEqual(disclosureReport({ period, usages: ledger, capacity, jobsServed: {}, timeZoneOffsetMinutes: timeZone }));
        }
        // Part archived and dropped from memory, part still only in memory, some in both: each task counted once.
        await db.query('TRUNCATE usage_segments');
        const flags = archivedFlags.take(ledger.length);
        const archivedPart = ledger.filter(() => flags.next().value as boolean);
        await archive((w) => archivedPart.forEach((u) => w.enqueueUsage(u)));
        const live = ledger.filter((u, i) => !archivedPart.includes(u) || i % 2 === 0);
        const range = periodRange('2026-11', timeZone);
        const merged = mergeUsages(await reader.usages({ fromMs: range.fromMs, toMs: range.toMs }), live);
        expect(billFor('beijing', '2026-11', merged, DEFAULT_PRICE_TABLE)).toEqual(billFor('beijing', '2026-11', ledger, DEFAULT_PRICE_TABLE));
        expect(summarize(merged, range)).toEqual(summarize(ledger, range));
      }),
      { numRuns: 12 },
    );
  });
});

describe('audit records from the archive', () => {
  const chain = auditChain(700);

  test('read back verbatim, filtered and paged as the live log is', async () => {
    await archive((w) => w.enqueueAudit(chain.slice(0, 600)));
    expect(writer.archivedAuditSeq()).toBe(600);
    expect(await reader.auditRecords({ limit: 600 })).toEqual(chain.slice(0, 600));
    expect(verifyChain(await reader.auditRecords({ limit: 1000 }))).toMatchObject({ ok: true, records: 600 });
    const filter = { actor: 'beijing', action: 'job.cancel', sinceMs: chain[99].atMs, untilMs: chain[400].atMs };
    const expected = chain.slice(0, 600).filter((r) => r.actor.name === filter.actor && r.action === filter.action && r.atMs >= filter.sinceMs && r.atMs < filter.untilMs);
    expect(await reader.auditRecords({ ...filter, limit: 1000 })).toEqual(expected);
    expect(await reader.auditRecords({ ...filter, afterSeq: expected[4].seq, limit: 3 })).toEqual(expected.slice(5, 8));
    expect(await reader.auditRecords({ target: 'j17', limit: 10 })).toEqual([chain[16]]);
    expect(await reader.auditRecords({ afterSeq: 100, throughSeq: 110, limit: 1000 })).toEqual(chain.slice(100, 110));
  });

  test('the chain verifies across the archive and the live tail, overlap included', async () => {
    expect(await reader.verifyAudit(chain.slice(550))).toEqual({ ok: true, records: 700, lastSeq: 700, lastHash: chain[699].hash, archivedRecords: 600 });
    expect(await reader.verifyAudit([])).toMatchObject({ ok: true, records: 600, archivedRecords: 600 });
  });

  test('a gap between the archive and the tail, a tail that differs, or an altered archived record is named', async () => {
    expect(await reader.verifyAudit(chain.slice(601))).toEqual({ ok: false, seq: 601, problem: 'record 601 is missing', archivedRecords: 600 });
    const forged = chain.slice(590).map((r) => (r.seq === 595 ? { ...r, hash: 'f'.repeat(64) } : r));
    expect(await reader.verifyAudit(forged)).toMatchObject({ ok: false, seq: 595, problem: 'record 595 in the stream differs from the archived record 595' });
    const altered = JSON.stringify({ ...chain[299], target: 'someone-else' });
    await db.query('UPDATE archived_audit SET record = $1 WHERE seq = 300', [altered]);
    expect(await reader.verifyAudit(chain.slice(600))).toEqual({ ok: false, seq: 300, problem: 'record 300 was altered (its hash does not match its content)', archivedRecords: 299 });
    await db.query('UPDATE archived_audit SET record = $1 WHERE seq = 300', [JSON.stringify(chain[299])]);
    await db.query('DELETE FROM archived_audit WHERE seq = 12');
    expect(await reader.verifyAudit(chain.slice(600))).toMatchObject({ ok: false, seq: 12, problem: 'record 12 is missing' });
  });
});
