import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { newJobId } from '../../scheduler/ids';
import { seededRng } from '../../src/sim/rng';
import { specView } from '../../scheduler/state/views';
import { ArchiveWriter, openArchiveDatabase, type ArchivedJob } from '../../src/archive';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { waitUntil } from '../../harness/wait';
import { STREAMS, attemptIdOf, type JobView } from '../../src/protocol';
import type { AuditRecord } from '../../src/store/audit-log';
import { usage } from '../billing/fixtures';
import { endedJob, freshDatabase } from '../archive/fixtures';
import { startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

/**
 * The read path end to end against a real stack with its own PostgreSQL: jobs finished in memory, and jobs
 * written straight to the archive as if memory had let them go, read through the API and `qy` as one
 * history; then PostgreSQL stops, and only the reads that need it fail.
 */

const run = promisify(execFile);
let nats: LocalNatsServer;
let pg: LocalPostgres;
let s: TestScheduler;
let agent: Agent;
let writer: ArchiveWriter;
let db: ReturnType<typeof openArchiveDatabase>;

const HOUR = 3_600_000;
const nowMs = Date.now();
/** Jobs that finished an hour ago and are only in the archive. */
const gone = {
  /** city-a's, submitted with an Idempotency-Key, on a node that no longer exists. */
  keyed: archivedOnly(1, 'city-a', nowMs - 3 * HOUR, { idempotencyKey: 'nightly-2026', nodeId: 'retired-7' }),
  /** city-a's, failed on the node still registered (whose agent no longer has its output). */
  failed: archivedOnly(2, 'city-a', nowMs - 2 * HOUR, { state: 'failed', nodeId: 'ar-1' }),
  /** city-b's. */
  other: archivedOnly(3, 'city-b', nowMs - 2 * HOUR, { nodeId: 'ar-1' }),
};

/** A job that ended an hour after `submittedAtMs`, with an id of its submission time, as the scheduler would have archived it. */
function archivedOnly(n: number, tenant: string, submittedAtMs: number, over: { idempotencyKey?: string; state?: 'failed'; nodeId: string }): ArchivedJob {
  const base = endedJob(n, { tenant, submittedAtMs, finishedAtMs: submittedAtMs + HOUR, state: over.state, exitCode: over.state ? 2 : 0, reason: over.state ? 'exited with code 2' : undefined, idempotencyKey: over.idempotencyKey });
  const id = newJobId(submittedAtMs);
  const attemptId = attemptIdOf(id, 1);
  const placement = base.view.placement!.map((p) => ({ ...p, nodeId: over.nodeId }));
  return { ...base, view: { ...base.view, id, attemptId, placement, history: [{ ...base.view.history[0], attemptId, nodes: [over.nodeId] }] } };
}

async function qy(who: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/qy.ts', '--server', s.url, ...args], { env: { ...process.env, QY_TOKEN: s.tokens[who] } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const ok = { pool: 'general', resources: { cpuMillis: 500, memBytes: 1 << 20 }, command: ['true'] };
let inMemory: string[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  pg = await startPostgres({ durable: false });
  const url = await freshDatabase(pg);
  s = await startScheduler(nats.url, { databaseUrl: url });
  agent = await startAgent(nats.url, 'arch', [testNode('ar-1')]);
  await waitForNodes(s.operator, ['ar-1']);
  await waitUntil(() => s.scheduler.archive!.writer.isAvailable() === true || undefined, 30_000, () => 'the scheduler did not reach its archive');
  // As if the scheduler had archived these and then let them leave memory: they were never in this one.
  db = openArchiveDatabase({ url });
  writer = new ArchiveWriter(db, { lingerMs: 5 });
  writer.start();
  for (const job of Object.values(gone)) writer.enqueueJob(job);
  writer.enqueueUsage(usage(gone.keyed.view.id, { tenant: 'city-a', segments: [{ hourStartMs: Math.floor((nowMs - 3 * HOUR) / HOUR) * HOUR, cpuMilliSeconds: 3_600_000, energyMilliWh: 500_000 }] }));
  expect(await writer.flush(30_000)).toBe(true);
  inMemory = [await s.api.submit(ok as never), await s.api.submit({ ...ok, command: ['sh', '-c', 'exit 4'] } as never), await s.as('city-b').submit(ok as never)];
  for (const id of inMemory) await s.operator.waitFor(id, ['succeeded', 'failed']);
}, 120_000);

afterAll(async () => {
  await writer?.close(0);
  await db?.end();
  await s?.close();
  await agent?.stop();
  await pg?.dispose();
  await nats?.dispose();
});

describe('a job only in the archive', () => {
  test('reads as it did, spec included, by its tenant and operators only', async () => {
    const res = await s.api.request<JobView>('GET', `/v1/jobs/${gone.keyed.view.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify({ ...gone.keyed.view, spec: specView(gone.keyed.spec) })));
    expect((await s.operator.request('GET', `/v1/jobs/${gone.other.view.id}`)).status).toBe(200);
    const hidden = await s.api.request('GET', `/v1/jobs/${gone.other.view.id}`);
    expect(hidden).toMatchObject({ status: 404, body: { code: 'QY_ERR_JOB_NOT_FOUND', message: `Job ${gone.other.view.id} not found` } });
  });

  test('an id no job can have is a 400, not a lookup PostgreSQL refuses (a NUL came back a 500)', async () => {
    for (const path of [`/v1/jobs/${gone.keyed.view.id}%00`, '/v1/jobs/%00/log', `/v1/jobs?tenant=city-a%00`]) {
      const res = await s.api.request<{ code: string }>('GET', path);
      expect({ path, status: res.status, code: res.body.code }).toEqual({ path, status: 400, code: 'QY_ERR_VALIDATION' });
    }
  });

  test('cannot be cancelled, and its log is what its agent still has', async () => {
    const cancel = await s.api.request('DELETE', `/v1/jobs/${gone.failed.view.id}`);
    expect(cancel).toMatchObject({ status: 409, body: { code: 'QY_ERR_JOB_FINISHED', message: `Job ${gone.failed.view.id} has already finished (failed)` } });
    expect((await s.as('city-b').request('DELETE', `/v1/jobs/${gone.failed.view.id}`)).status).toBe(404);
    const retired = await s.api.request<{ code: string; message: string }>('GET', `/v1/jobs/${gone.keyed.view.id}/log`);
    expect(retired.status).toBe(404);
    expect(retired.body.code).toBe('QY_ERR_LOG_UNAVAILABLE');
    expect(retired.body.message).toBe(`No log for job ${gone.keyed.view.id}: it ended at ${gone.keyed.view.finishedAt} and is only in the archive now; its node retired-7 is no longer registered`);
    const forgotten = await s.api.request<{ code: string; message: string }>('GET', `/v1/jobs/${gone.failed.view.id}/log`);
    expect(forgotten.status).toBe(404);
    expect(forgotten.body.message).toMatch(new RegExp(`^No log for job ${gone.failed.view.id}: it ended at .* and is only in the archive now; the agent of node ar-1 no longer has it: `));
    // A job still in memory: its agent answers as before.
    expect((await s.api.request<{ text: string }>('GET', `/v1/jobs/${inMemory[0]}/log`)).status).toBe(200);
  });

  test('a retried submission with its Idempotency-Key gets it back; another body is refused', async () => {
    const again = await s.api.request<{ id: string; state: string }>('POST', '/v1/jobs', { body: gone.keyed.spec, headers: { 'idempotency-key': 'nightly-2026' } });
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ id: gone.keyed.view.id, state: 'succeeded' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const changed = await s.api.request<{ code: string }>('POST', '/v1/jobs', { body: { ...gone.keyed.spec, name: 'other' }, headers: { 'idempotency-key': 'nightly-2026' } });
    expect(changed).toMatchObject({ status: 409, body: { code: 'QY_ERR_IDEMPOTENCY_KEY_REUSED' } });
    // The key is city-a's: city-b's submission with it is a new job.
    const theirs = await s.as('city-b').request<{ id: string }>('POST', '/v1/jobs', { body: ok, headers: { 'idempotency-key': 'nightly-2026' } });
    expect(theirs.status).toBe(202);
    expect(theirs.body.id).not.toBe(gone.keyed.view.id);
    inMemory.push(theirs.body.id);
    await s.operator.waitFor(theirs.body.id, ['succeeded']);
  });
});

describe('history over memory and the archive', () => {
  test('GET /v1/jobs pages through both in submission order, with the window and filters', async () => {
    const since = new Date(nowMs - 4 * HOUR).toISOString();
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.operator.request<{ items: JobView[]; nextCursor?: string }>('GET', `/v1/jobs?limit=2&since=${since}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      ids.push(...page.body.items.map((v) => v.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    const all = [...Object.values(gone).map((j) => j.view.id), ...inMemory];
    expect(ids).toEqual([...all].sort());
    const failed = await s.api.request<{ items: JobView[] }>('GET', `/v1/jobs?state=failed&since=${since}`);
    expect(failed.body.items.map((v) => v.id)).toEqual([gone.failed.view.id, inMemory[1]]);
    // A window that ended before the jobs in memory were submitted: only the archive's.
    const earlier = await s.api.request<{ items: JobView[] }>('GET', `/v1/jobs?since=${since}&until=${new Date(nowMs - HOUR).toISOString()}`);
    expect(earlier.body.items.map((v) => v.id)).toEqual([gone.keyed.view.id, gone.failed.view.id]);
  });

  test('qy history shows both, as sacct does, for a tenant and for operators', async () => {
    const json = JSON.parse((await qy('city-a', 'history', '--since', '4h', '-o', 'json')).stdout) as { items: { id: string; state: string; exitCode: number | null; nodeList: string | null; elapsedSeconds: number }[] };
    expect(json.items.map((r) => r.id)).toEqual([gone.keyed.view.id, gone.failed.view.id, inMemory[0], inMemory[1]]);
    expect(json.items[1]).toMatchObject({ state: 'failed', exitCode: 2, nodeList: 'ar-1', elapsedSeconds: 3600 });
    expect(json.items[3]).toMatchObject({ state: 'failed', exitCode: 4, nodeList: 'ar-1' });
    const csv = (await qy('ops', 'history', '--tenant', 'city-b', '--since', '4h', '-o', 'csv')).stdout.trim().split('\r\n');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual([gone.other.view.id, inMemory[2], inMemory[3]]);
    const table = (await qy('city-a', 'history', '--since', '4h', '--state', 'succeeded')).stdout;
    expect(table).toMatch(new RegExp(`${gone.keyed.view.id}\\s+job-1\\s+city-a\\s+general\\s+succeeded\\s.*\\s01:00:00\\s+1\\s+0\\s+retired-7`));
  });

  test('usage and bills count the archived job once, beside the jobs in memory', async () => {
    const hourMs = Math.floor((nowMs - 3 * HOUR) / HOUR) * HOUR;
    const day = new Date(hourMs + 8 * HOUR).toISOString().slice(0, 10); // the cluster's local day (UTC+8)
    const summary = await s.api.request<{ byJob: Record<string, { coreHours: number }> }>('GET', `/v1/usage?period=${day}`);
    expect(summary.status).toBe(200);
    expect(summary.body.byJob[gone.keyed.view.id]).toMatchObject({ coreHours: 1 });
    const bill = await s.api.request<{ lines: { item: string; quantity: { base: number } }[] }>('GET', `/v1/bills/city-a/${day}`);
    expect(bill.status).toBe(200);
    // The archived job's hour, plus whatever the jobs in memory ran that day.
    expect(bill.body.lines.filter((l) => l.item === 'cpu').reduce((n, l) => n + l.quantity.base, 0)).toBeGreaterThanOrEqual(3_600_000);
  });
});

describe('the audit chain across the archive and the stream', () => {
  test('qy audit verify and /v1/audit/verify check the archived prefix and the live tail as one chain', async () => {
    // The scheduler's own archiver feeds the chain into the archive; the test compacts the stream itself.
    const last = async () => (await s.scheduler.audit.list({ limit: 100_000 })).at(-1)!.seq;
    await waitUntil(async () => ((await last()) === s.scheduler.archive!.writer.archivedAuditSeq() ? true : undefined), 30_000, async () => `archived ${s.scheduler.archive!.writer.archivedAuditSeq()} of ${await last()}`);
    const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(s.scheduler.nc);
    await jsm.streams.purge(STREAMS.audit, { keep: 1 });
    await s.operator.request('POST', '/v1/nodes/ar-1/cordon'); // one record more, in the stream only
    await s.operator.request('POST', '/v1/nodes/ar-1/uncordon');
    expect(await s.scheduler.audit.firstSeq()).toBeGreaterThan(3);

    const records: AuditRecord[] = [];
    for (;;) {
      const page = await s.operator.request<{ items: AuditRecord[] }>('GET', `/v1/audit?limit=3${records.length ? `&afterSeq=${records.at(-1)!.seq}` : ''}`);
      records.push(...page.body.items);
      if (page.body.items.length < 3) break;
    }
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect(records.at(-1)!.action).toBe('node.uncordon');
    const verdict = await s.operator.request<{ ok: boolean; records: number; archivedRecords: number }>('GET', '/v1/audit/verify');
    expect(verdict.body).toMatchObject({ ok: true, records: records.length });
    expect(verdict.body.archivedRecords).toBeGreaterThanOrEqual(records.length - 3);
    const cli = await qy('ops', 'audit', 'verify');
    expect(cli.stdout.trim()).toBe(`audit chain intact: ${records.length} records, last hash ${records.at(-1)!.hash}`);
  });
});

describe('PostgreSQL down', () => {
  test('reads that need the archive are 503 QY_ERR_ARCHIVE_UNAVAILABLE; what memory knows is still served', async () => {
    await pg.stop();
    try {
      const unavailable = { status: 503, body: { code: 'QY_ERR_ARCHIVE_UNAVAILABLE' } };
      expect(await s.api.request('GET', `/v1/jobs/${gone.keyed.view.id}`)).toMatchObject(unavailable);
      expect(await s.api.request('GET', '/v1/jobs?state=succeeded')).toMatchObject(unavailable);
      expect(await s.api.request('GET', '/v1/usage?period=2026-11')).toMatchObject(unavailable);
      expect(await s.operator.request('GET', '/v1/audit?limit=10')).toMatchObject(unavailable);
      expect(await s.api.request('POST', '/v1/jobs', { body: ok, headers: { 'idempotency-key': 'new-while-down' } })).toMatchObject(unavailable);
      const history = await qy('city-a', 'history', '--since', '4h');
      expect(history.code).toBe(1);
      expect(history.stderr).toMatch(/^qy: QY_ERR_ARCHIVE_UNAVAILABLE: The accounting archive \(PostgreSQL\) is unavailable: /);

      expect((await s.api.request<JobView>('GET', `/v1/jobs/${inMemory[0]}`)).body.state).toBe('succeeded');
      expect((await s.api.request('GET', '/v1/jobs?state=running')).status).toBe(200);
      expect(await s.api.request('POST', '/v1/jobs', { body: ok, headers: { 'idempotency-key': 'nightly-2026' } })).toMatchObject({ status: 503 });
      const id = await s.api.submit(ok as never);
      await s.api.waitFor(id, ['succeeded']);
      expect((await s.operator.request('GET', '/v1/audit?limit=10&afterSeq=100000')).status).toBe(200);
    } finally {
      await pg.restart();
    }
    await waitUntil(async () => ((await s.api.request('GET', `/v1/jobs/${gone.keyed.view.id}`)).status === 200 ? true : undefined), 30_000, () => 'the archive did not come back');
  });
});

describe('odd requests at every route', () => {
  test('a thousand requests with odd ids, filters and bodies, as a tenant, an operator and nobody: never a 5xx', async () => {
    // Last in this file: some of these cordon or drain the node, change quotas or cancel jobs.
    const rng = seededRng(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
    const paths = (await s.operator.request<{ paths: Record<string, Record<string, unknown>> }>('GET', '/docs/json')).body.paths;
    const routes = Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path })));
    const segments = [gone.keyed.view.id, gone.other.view.id, inMemory[0], 'ar-1', 'city-a', 'city-b', '2026-11', 'nope', '%00', 'a%00b', '%0A', '%E2%80%AE', '%F0%9F%98%80', 'x'.repeat(300), '..%2F..', '%25', '-1', '2026-13'];
    const queries = ['', '?limit=0', '?limit=5&cursor=%00', `?tenant=city-a%00`, '?state=running&pool=general', '?period=2026-11&pool=quantum', '?minutes=-5&stepSeconds=0', '?afterSeq=1e309', '?since=yesterday', '?hours=100000', '?format=xml', '?maxBytes=-1'];
    const bodies = [undefined, '', '{', 'null', '[]', '"x"', '{"a":{"b":[1,{"c":null}]}}', JSON.stringify(ok), JSON.stringify({ ...ok, name: 'n\u0000m', env: { A: 'b\u0000' }, command: ['echo', 'a\u0000b'] }), JSON.stringify({ requeue: true, reason: 'r\u0000' }), JSON.stringify({ general: { cpuMillis: -1 } }), JSON.stringify({ id: 'd\u0000', name: 'x', uri: 's3://x', classification: 'public' }), JSON.stringify({ ...ok, resources: { cpuMillis: 1e308, memBytes: -0 } })];
    const callers = [s.api, s.operator, s.as('city-b'), s.api.as(undefined)];
    const bad: unknown[] = [];
    for (let i = 0; i < 1_000; i++) {
      const route = pick(routes);
      const path = route.path.replace(/\{[^}]+\}/g, () => pick(segments)) + (rng() < 0.5 ? pick(queries) : '');
      const rawBody = route.method === 'GET' || route.method === 'DELETE' ? undefined : pick(bodies);
      const res = await pick(callers).request(route.method, path, { rawBody, headers: rawBody === undefined ? {} : { 'content-type': pick(['application/json', 'application/json', 'text/plain']) } });
      if (res.status >= 500) bad.push({ method: route.method, path, rawBody, status: res.status, body: res.body });
    }
    expect(bad).toEqual([]);
  }, 120_000);
});
