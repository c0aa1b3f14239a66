import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AuditArchiver } from '../../scheduler/audit-archiver';
import { AuditReads } from '../../scheduler/audit-reads';
import { openArchive, type Archive } from '../../src/archive';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { waitUntil } from '../../harness/wait';
import { STREAMS } from '../../src/protocol';
import { AuditLog, verifyChain, type AuditRecord } from '../../src/store/audit-log';
import { connectNats, ensureStreams } from '../../src/store/nats';
import { freshDatabase } from '../archive/fixtures';
import { silentLog } from '../helpers/stack';

/**
 * The audit chain leaves the QY_AUDIT stream for the archive: the archiver feeds it, the stream is then
 * compacted below what the archive holds (as the lead's compaction will), and every read — pages, filters,
 * the verification — still sees one chain, archive first, then the live tail.
 */

let nats: LocalNatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let pg: LocalPostgres;
let archive: Archive;
let audit: AuditLog;
let archiver: AuditArchiver;
let clockMs = 1_790_000_000_000;
let refusals = 0;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats(nats.url, 'audit-archive-test');
  jsm = await ensureStreams(nc, { replicas: 1, duplicateWindowMs: 60_000 });
  audit = new AuditLog(nc, silentLog, () => (clockMs += 1000));
  await audit.init();
  pg = await startPostgres({ durable: false });
  // A small buffer, so the archiver meets a writer that refuses and must offer again.
  archive = openArchive({ url: await freshDatabase(pg), writer: { lingerMs: 5, maxBufferedRecords: 7, retryInitialMs: 50, retryMaxMs: 200, hooks: { refused: () => refusals++ } } });
});

afterAll(async () => {
  await archiver?.stop();
  await archive?.close(0);
  await pg?.dispose();
  await nc?.drain();
  await nats?.dispose();
});

/** Appends `turns` blocks of 1 to 4 records each, by tenants and operators, as the API would. */
async function appendTurns(turns: number): Promise<void> {
  for (let t = 0; t < turns; t++) {
    const records = (t % 4) + 1;
    await Promise.all(
      Array.from({ length: records }, (_, i) =>
        audit.append({ actor: i % 2 ? { kind: 'operator', name: 'ops' } : { kind: 'tenant', name: 'city-a' }, action: i % 2 ? 'node.cordon' : 'job.submit', target: `t${t}-${i}`, outcome: 'ok' }),
      ),
    );
  }
}

/** Every record the stream holds, from its first. */
const streamRecords = () => audit.list({ limit: 100_000 });

/** Every record the reads give, page by page. */
async function allPages(reads: AuditReads, filter: { actor?: string; action?: string; sinceMs?: number } = {}, limit = 7): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (;;) {
    const page = await reads.list({ ...filter, limit, afterSeq: out[out.length - 1]?.seq });
    expect(page.length).toBeLessThanOrEqual(limit);
    out.push(...page);
    if (page.length < limit) return out;
  }
}

/** Keeps only the newest `keep` messages of QY_AUDIT, as compaction below the archived prefix does. */
async function compactStream(keep: number): Promise<void> {
  await jsm.streams.purge(STREAMS.audit, { keep });
}

const failure = (p: Promise<unknown>) => p.then(
  () => undefined,
  (err: { code: string; statusCode: number }) => ({ code: err.code, statusCode: err.statusCode }),
);

describe('audit records from the stream to the archive and back', () => {
  let chain: AuditRecord[];

  test('the stream is read from any record on, without reading it from its start', async () => {
    await appendTurns(30);
    chain = await streamRecords();
    expect(verifyChain(chain)).toMatchObject({ ok: true, records: 73 }); // 7 × (1+2+3+4) + 1 + 2
    for (const afterSeq of [0, 1, 2, 9, 10, 11, 40, 72, 73, 80]) expect(await audit.list({ afterSeq, limit: 1000 })).toEqual(chain.filter((r) => r.seq > afterSeq));
    expect(await audit.list({ afterSeq: 20, limit: 3, action: 'node.cordon' })).toEqual(chain.filter((r) => r.seq > 20 && r.action === 'node.cordon').slice(0, 3));
    expect(await audit.firstSeq()).toBe(1);
  });

  test('the archiver offers the whole chain and follows new records, through a writer that refuses when full', async () => {
    await waitUntil(() => archive.writer.isAvailable() === true || undefined, 30_000, () => 'the archive writer did not reach PostgreSQL');
    archiver = AuditArchiver.start({ audit, writer: archive.writer, log: silentLog, retryMs: 20 });
    await waitUntil(() => archive.writer.archivedAuditSeq() === 73 || undefined, 30_000, () => `archived through ${archive.writer.archivedAuditSeq()}`);
    await appendTurns(8);
    chain = await streamRecords();
    await waitUntil(() => archive.writer.archivedAuditSeq() === chain.length || undefined, 30_000, () => `archived through ${archive.writer.archivedAuditSeq()} of ${chain.length}`);
    expect(await archive.reader.auditRecords({ limit: 1000 })).toEqual(chain);
    expect(refusals).toBeGreaterThan(0);
  });

  test('with the stream compacted, pages, filters and the verification read archive and tail as one chain', async () => {
    await compactStream(5);
    const first = (await audit.firstSeq())!;
    expect(first).toBeGreaterThan(60);
    await appendTurns(3); // the newest records are only in the stream until the archiver catches up
    chain = [...(await archive.reader.auditRecords({ limit: 1000, throughSeq: first - 1 })), ...(await streamRecords())];
    expect(verifyChain(chain)).toMatchObject({ ok: true, records: chain.length });
    const reads = new AuditReads({ audit, archive });
    expect(await allPages(reads)).toEqual(chain);
    expect(await allPages(reads, { actor: 'ops' }, 4)).toEqual(chain.filter((r) => r.actor.name === 'ops'));
    expect(await allPages(reads, { action: 'job.submit', sinceMs: chain[40].atMs }, 5)).toEqual(chain.filter((r) => r.action === 'job.submit' && r.atMs >= chain[40].atMs));
    expect(await reads.verify()).toMatchObject({ ok: true, records: chain.length, lastHash: chain[chain.length - 1].hash });
  });

  test('a replica whose writer knows an older prefix reads the same chain', async () => {
    // Its writer learnt the archived prefix when it started; the chain has moved on and been compacted since.
    const other = openArchive({ url: archive.db.options.connectionString!, writer: { lingerMs: 5 } });
    try {
      await waitUntil(() => other.writer.isAvailable() === true || undefined, 30_000, () => 'the second writer did not reach PostgreSQL');
      const stalePrefix = other.writer.archivedAuditSeq();
      await appendTurns(6);
      await waitUntil(async () => ((await streamRecords()).at(-1)!.seq === archive.writer.archivedAuditSeq() ? true : undefined), 30_000, () => 'the archiver did not catch up');
      await compactStream(2);
      expect((await audit.firstSeq())!).toBeGreaterThan(stalePrefix + 1);
      chain = await archive.reader.auditRecords({ limit: 1000 });
      expect(await allPages(new AuditReads({ audit, archive: other }), {}, 9)).toEqual(chain);
      expect(await new AuditReads({ audit, archive: other }).verify()).toMatchObject({ ok: true, records: chain.length });
    } finally {
      await other.close(0);
    }
  });

  test('PostgreSQL down: what the stream still holds is served, the rest is 503, and the archiver catches up after', async () => {
    const reads = new AuditReads({ audit, archive });
    const first = (await audit.firstSeq())!;
    await pg.stop();
    try {
      await appendTurns(4); // 10 records: more than the writer buffers (7)
      expect(await failure(reads.list({ limit: 10 }))).toEqual({ code: 'QY_ERR_ARCHIVE_UNAVAILABLE', statusCode: 503 });
      expect(await failure(reads.verify())).toEqual({ code: 'QY_ERR_ARCHIVE_UNAVAILABLE', statusCode: 503 });
      const tail = await reads.list({ limit: 1000, afterSeq: first - 1 });
      expect(tail.map((r) => r.seq)).toEqual((await streamRecords()).map((r) => r.seq));
    } finally {
      await pg.restart();
    }
    const last = (await streamRecords()).at(-1)!.seq;
    await waitUntil(() => archive.writer.archivedAuditSeq() === last || undefined, 60_000, () => `archived through ${archive.writer.archivedAuditSeq()} of ${last}`);
    expect(await reads.verify()).toMatchObject({ ok: true, records: last, archivedRecords: last });
  });

  test('without an archive, or while it is down and the stream holds the whole chain, the stream alone answers', async () => {
    const fresh = await startNatsServer();
    const nc2 = await connectNats(fresh.url, 'audit-archive-test-2');
    try {
      await ensureStreams(nc2, { replicas: 1, duplicateWindowMs: 60_000 });
      const log2 = new AuditLog(nc2, silentLog);
      await log2.init();
      await log2.append({ actor: { kind: 'operator', name: 'ops' }, action: 'node.cordon', target: 'n1', outcome: 'ok' });
      await log2.append({ actor: { kind: 'tenant', name: 'city-a' }, action: 'job.submit', target: 'j1', outcome: 'ok' });
      const whole = await log2.list({ limit: 100 });
      expect(await new AuditReads({ audit: log2, archive: undefined }).list({ limit: 100 })).toEqual(whole);
      expect(await new AuditReads({ audit: log2, archive: undefined }).verify()).toEqual({ ok: true, records: 2, lastSeq: 2, lastHash: whole[1].hash });
      await pg.stop();
      try {
        const reads = new AuditReads({ audit: log2, archive });
        expect(await reads.list({ limit: 100 })).toEqual(whole);
        expect(await reads.verify()).toMatchObject({ ok: true, records: 2 });
      } finally {
        await pg.restart();
      }
    } finally {
      await nc2.drain();
      await fresh.dispose();
    }
  });
});
