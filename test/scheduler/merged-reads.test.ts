import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newJobId } from '../../scheduler/ids';
import type { JobStateView } from '../../scheduler/job-store';
import { UsageLedger } from '../../scheduler/metering';
import type { OperationsDeps } from '../../scheduler/operations-deps';
import { SchedulerOperations } from '../../scheduler/operations';
import { JobTable } from '../../scheduler/state/job-table';
import { archivedJobOf } from '../../scheduler/state/views';
import { TenantDirectory, loadTenantsFile, type Principal } from '../../scheduler/tenants';
import { isActiveInWindow, openArchive, type Archive } from '../../src/archive';
import { DEFAULT_PRICE_TABLE } from '../../src/billing';
import { ClusterState, DEFAULT_POLICY, PendingQueue, placeJob } from '../../src/core';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { waitUntil } from '../../harness/wait';
import { attemptIdOf, jobSpecSchema, type JobView, type TaskUsage } from '../../src/protocol';
import { HOUR, cst, usage } from '../billing/fixtures';
import { gpuNodeSpec, nodeSpec } from '../core/fixtures';
import { freshDatabase } from '../archive/fixtures';
import { testTenantsFile } from '../helpers/stack';

/**
 * The same jobs and usage read through the scheduler's operations two ways: all of it in memory (the
 * memory-only path, as without QY_DATABASE_URL), and split between memory and the accounting archive
 * (some finished jobs only in the archive, as if memory had let them go; some in both; some only in memory,
 * not archived yet; every unfinished job in memory). Every answer must be the same, to the integer.
 */

let cluster: LocalPostgres;
let archive: Archive;
const tenants = new TenantDirectory(loadTenantsFile(testTenantsFile().file));
const operator: Principal = { kind: 'operator', name: 'ops' };
const tenant = (name: string): Principal => ({ kind: 'tenant', name, tenant: tenants.tenant(name)! });

beforeAll(async () => {
  cluster = await startPostgres({ durable: false });
  archive = openArchive({ url: await freshDatabase(cluster), writer: { lingerMs: 5 } });
  await waitUntil(() => archive.writer.isAvailable() === true || undefined, 30_000, () => 'the archive writer did not reach PostgreSQL');
});

afterAll(async () => {
  await archive?.close(0);
  await cluster?.dispose();
});

type Outcome = 'succeeded' | 'failed' | 'cancelled' | 'running' | 'pending';
/** Where a finished job is: only in the archive (memory let it go), in both, or only in memory (not archived yet). */
type Place = 'archive' | 'both' | 'memory';
interface Plan {
  id: string;
  tenant: 'city-a' | 'city-b';
  pool: 'general' | 'intelligent';
  outcome: Outcome;
  submittedAtMs: number;
  runMs: number;
  place: Place;
  usage?: TaskUsage;
}

const T0 = cst('2026-11-01T00:00');
const segmentArb = fc.record({
  hour: fc.integer({ min: -40, max: 60 }),
  cpuMilliSeconds: fc.nat(16 * 1000 * 3600),
  gpuMilliSeconds: fc.dictionary(fc.constantFrom('A800', 'H800'), fc.nat(8 * 1000 * 3600), { maxKeys: 2 }),
  memMiBSeconds: fc.nat(64 * 1024 * 3600),
  energyMilliWh: fc.nat(5_000_000),
  carbonMg: fc.nat(2_000_000),
});
const plansArb: fc.Arbitrary<Plan[]> = fc
  .array(
    fc.record({
      tenant: fc.constantFrom('city-a' as const, 'city-b' as const),
      pool: fc.constantFrom('general' as const, 'intelligent' as const),
      outcome: fc.constantFrom<Outcome>('succeeded', 'succeeded', 'failed', 'cancelled', 'running', 'pending'),
      submitHour: fc.integer({ min: -48, max: 60 }),
      runMinutes: fc.integer({ min: 1, max: 600 }),
      place: fc.constantFrom<Place>('archive', 'both', 'memory'),
      segments: fc.array(segmentArb, { minLength: 1, maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 40 },
  )
  .map((raw) =>
    raw.map((r): Plan => {
      const submittedAtMs = T0 + r.submitHour * HOUR + 17_000;
      const id = newJobId(submittedAtMs);
      const finished = r.outcome === 'succeeded' || r.outcome === 'failed';
      return {
        id,
        tenant: r.tenant,
        pool: r.pool,
        outcome: r.outcome,
        submittedAtMs,
        runMs: r.runMinutes * 60_000,
        place: r.outcome === 'running' || r.outcome === 'pending' ? 'memory' : r.place,
        usage: finished ? usage(id, { tenant: r.tenant, pool: r.pool, segments: r.segments.map(({ hour, ...s }) => ({ ...s, hourStartMs: T0 + hour * HOUR, greenMilliWh: Math.floor(s.energyMilliWh / 4) })) }) : undefined,
      };
    }),
  );

/** Memory as the scheduler keeps it, holding the jobs of `plans` (applied in the order given, not by id). */
function memoryOf(plans: readonly Plan[]): JobStateView {
  const clusterState = new ClusterState();
  for (let i = 0; i < 2; i++) clusterState.upsertNode(nodeSpec(`g${i}`, { capacity: { cpuMillis: 64_000 } }));
  for (let i = 0; i < 6; i++) clusterState.upsertNode(gpuNodeSpec(`gpu${i}`));
  const pending = new PendingQueue();
  const table = new JobTable(clusterState, pending);
  const ledger = new UsageLedger();
  for (const p of plans) {
    const spec = jobSpecSchema.parse({ name: `job-${p.id}`, pool: p.pool, resources: { cpuMillis: 1000, memBytes: 1 << 20, gpus: p.pool === 'intelligent' ? 1 : 0 }, command: ['true'] });
    table.applySubmitted({ type: 'submitted', v: 1, jobId: p.id, tenant: p.tenant, spec, submittedAtMs: p.submittedAtMs, priority: 500, maxAttempts: 3 });
    if (p.outcome === 'pending') continue;
    if (p.outcome === 'cancelled') {
      table.applyCancelRequested({ type: 'cancel-requested', jobId: p.id, reason: 'cancelled by tenant', atMs: p.submittedAtMs + p.runMs });
      continue;
    }
    const placed = placeJob(clusterState, table.get(p.id)!.sched, DEFAULT_POLICY);
    if (!placed.ok) throw new Error(`no room for ${p.id}`);
    const attemptId = attemptIdOf(p.id, 1);
    table.applyPlaced({ type: 'placed', jobId: p.id, attempt: 1, attemptId, placement: placed.placement, atMs: p.submittedAtMs + 1_000 });
    const report = { type: 'status' as const, nodeId: placed.placement.tasks[0].nodeId, jobId: p.id, attemptId, taskIndex: 0 };
    table.applyStatus({ ...report, state: 'running', atMs: p.submittedAtMs + 2_000 });
    if (p.outcome === 'running') continue;
    table.applyStatus({ ...report, state: p.outcome, exitCode: p.outcome === 'failed' ? 3 : 0, atMs: p.submittedAtMs + p.runMs });
    if (p.usage) ledger.record(p.usage);
  }
  return { cluster: clusterState, pending, table, usage: ledger };
}

/** The scheduler's operations over some memory and, perhaps, the archive (the parts of the scheduler these reads use). */
function operationsOver(store: JobStateView, withArchive: Archive | undefined): SchedulerOperations {
  return new SchedulerOperations({ store, archive: withArchive, prices: DEFAULT_PRICE_TABLE, tenants, config: {} } as unknown as OperationsDeps);
}

/** Every page of a listing, one after the other. */
async function allPages(ops: SchedulerOperations, filter: Parameters<SchedulerOperations['listJobs']>[0], principal: Principal) {
  const pages: { items: JobView[]; nextCursor?: string }[] = [];
  let cursor = filter.cursor;
  do {
    const page = await ops.listJobs({ ...filter, cursor }, principal);
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor && pages.length < 100);
  return pages;
}

/** The errors of an operation, as the HTTP layer would send them. */
const failure = (p: Promise<unknown>) => p.then(
  () => undefined,
  (err: { code: string; statusCode: number }) => ({ code: err.code, statusCode: err.statusCode }),
);

const PERIODS = ['2026-10', '2026-11', '2026-10-31', '2026-11-01', '2026-11-02'];
const iso = (ms: number) => new Date(ms).toISOString();
const LISTINGS: { filter: Parameters<SchedulerOperations['listJobs']>[0]; principal: Principal }[] = [
  { filter: { limit: 3 }, principal: operator },
  { filter: { limit: 1000 }, principal: operator },
  { filter: { limit: 4, state: 'succeeded' }, principal: operator },
  { filter: { limit: 2, state: 'running' }, principal: operator },
  { filter: { limit: 3, pool: 'intelligent', tenant: 'city-b' }, principal: operator },
  { filter: { limit: 5 }, principal: tenant('city-a') },
  { filter: { limit: 3, since: iso(T0), until: iso(T0 + 12 * HOUR) }, principal: operator },
  { filter: { limit: 2, since: iso(T0 + 24 * HOUR), state: 'failed' }, principal: tenant('city-b') },
  { filter: { limit: 3, until: iso(T0 - 10 * HOUR), cursor: newJobId(T0 - 30 * HOUR) }, principal: operator },
];

describe('memory alone and memory with the archive answer alike', () => {
  test('jobs, usage, bills and disclosure: the same answers, to the integer', async () => {
    await fc.assert(
      fc.asyncProperty(plansArb, async (plans) => {
        await archive.db.query('TRUNCATE archived_jobs, usage_segments');
        const whole = memoryOf(plans);
        const split = memoryOf(plans.filter((p) => p.place !== 'archive'));
        for (const p of plans.filter((p) => p.place !== 'memory')) {
          const archived = archivedJobOf(whole.table.get(p.id)!, whole.pending);
          // A job in both is read from memory: the archive's copy is marked so that using it would show.
          if (p.place === 'both') archived.view = { ...archived.view, name: 'the archived copy' };
          archive.writer.enqueueJob(archived);
          if (p.usage) archive.writer.enqueueUsage(p.usage);
        }
        expect(await archive.writer.flush(30_000)).toBe(true);
        const memoryOnly = operationsOver(whole, undefined);
        const merged = operationsOver(split, archive);

        for (const period of PERIODS) {
          for (const [filter, who] of [
            [{ period }, operator],
            [{ period, tenant: 'city-b', pool: 'intelligent' as const }, operator],
            [{ period }, tenant('city-a')],
          ] as const) {
            expect(await merged.usage(filter, who)).toEqual(await memoryOnly.usage(filter, who));
          }
          for (const name of ['city-a', 'city-b']) expect(await merged.bill(name, period, operator)).toEqual(await memoryOnly.bill(name, period, operator));
          expect(JSON.stringify(await merged.disclosure(period))).toBe(JSON.stringify(await memoryOnly.disclosure(period)));
        }

        for (const { filter, principal } of LISTINGS) {
          const pages = await allPages(memoryOnly, filter, principal);
          expect(await allPages(merged, filter, principal)).toEqual(pages);
          // And memory alone lists what the filter selects, in id order: since/until are the sacct window.
          const who = principal.kind === 'tenant' ? principal.name : filter.tenant;
          const expected = plans
            .map((p) => whole.table.get(p.id)!)
            .filter((j) => (who === undefined || j.tenant === who) && (!filter.state || j.state === filter.state) && (!filter.pool || j.spec.pool === filter.pool))
            .filter((j) => (filter.cursor === undefined || j.id > filter.cursor) && isActiveInWindow(j, { sinceMs: filter.since ? Date.parse(filter.since) : undefined, untilMs: filter.until ? Date.parse(filter.until) : undefined }))
            .map((j) => j.id)
            .sort();
          expect(pages.flatMap((p) => p.items.map((v) => v.id))).toEqual(expected);
          expect(pages.every((p, i) => p.items.length === filter.limit || i === pages.length - 1)).toBe(true);
        }

        for (const p of plans) {
          expect(await merged.getJob(p.id, operator)).toEqual(await memoryOnly.getJob(p.id, operator));
          const other = tenant(p.tenant === 'city-a' ? 'city-b' : 'city-a');
          expect(await failure(merged.getJob(p.id, other))).toEqual({ code: 'QY_ERR_JOB_NOT_FOUND', statusCode: 404 });
        }
        expect(await failure(merged.getJob('jnosuchjob', operator))).toEqual({ code: 'QY_ERR_JOB_NOT_FOUND', statusCode: 404 });
      }),
      { numRuns: 15 },
    );
  });

  test('a job only in the archive reads as it did in memory, spec included', async () => {
    const plans: Plan[] = [{ id: newJobId(T0), tenant: 'city-a', pool: 'general', outcome: 'failed', submittedAtMs: T0, runMs: 60_000, place: 'archive' }];
    const whole = memoryOf(plans);
    archive.writer.enqueueJob(archivedJobOf(whole.table.get(plans[0].id)!, whole.pending));
    expect(await archive.writer.flush(30_000)).toBe(true);
    const view = await operationsOver(memoryOf([]), archive).getJob(plans[0].id, tenant('city-a'));
    expect(view).toEqual(await operationsOver(whole, undefined).getJob(plans[0].id, tenant('city-a')));
    expect(view).toMatchObject({ state: 'failed', exitCode: 3, spec: { command: ['true'], envNames: [] } });
  });
});
