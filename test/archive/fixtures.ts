import pg from 'pg';
import type { ArchivedJob } from '../../src/archive';
import { jobSpecSchema, type JobState, type JobView, type Pool } from '../../src/protocol';
import { GENESIS_HASH, hashRecord, type AuditRecord } from '../../src/store/audit-log';
import type { LocalPostgres } from '../../harness/postgres';

let databases = 0;

/** A new, empty database in the test cluster (each test gets its own schema state), as a URL. */
export async function freshDatabase(cluster: LocalPostgres): Promise<string> {
  const name = `t${process.pid}_${++databases}`;
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return cluster.url.replace(/\/qingyang$/, `/${name}`);
}

/** A job that has ended, as the scheduler would archive it; `n` sets its id and submission time. */
export function endedJob(n: number, over: { tenant?: string; pool?: Pool; state?: JobState; submittedAtMs?: number; finishedAtMs?: number; exitCode?: number; reason?: string; idempotencyKey?: string } = {}): ArchivedJob {
  const pool = over.pool ?? 'general';
  const submittedAtMs = over.submittedAtMs ?? 1_790_000_000_000 + n * 1000;
  const finishedAtMs = over.finishedAtMs ?? submittedAtMs + 60_000;
  const spec = jobSpecSchema.parse({ name: `job-${n}`, pool, resources: { cpuMillis: 1000, memBytes: 1 << 20 }, walltimeSeconds: 3600, env: { NOTE: 'nul \u0000 and "quotes" \\ too' } });
  const state = over.state ?? 'succeeded';
  const view: JobView = {
    id: `j${String(n).padStart(12, '0')}`,
    name: spec.name,
    tenant: over.tenant ?? 'beijing',
    pool,
    priorityClass: spec.priorityClass,
    dataClass: spec.dataClass,
    state,
    tasks: 1,
    resources: spec.resources,
    attempts: 1,
    maxAttempts: 3,
    attemptId: `a${n}`,
    placement: [{ taskIndex: 0, nodeId: `node-${n % 3}`, cpuMillis: 1000, memBytes: 1 << 20, gpuIndices: [], gpuMilliEach: 0, state: state === 'succeeded' ? 'succeeded' : 'failed', exitCode: over.exitCode ?? 0 }],
    exitCode: over.exitCode ?? (state === 'succeeded' ? 0 : undefined),
    reason: over.reason,
    submittedAt: new Date(submittedAtMs).toISOString(),
    placedAt: new Date(submittedAtMs + 10).toISOString(),
    startedAt: new Date(submittedAtMs + 20).toISOString(),
    finishedAt: new Date(finishedAtMs).toISOString(),
    history: [{ attemptId: `a${n}`, nodes: [`node-${n % 3}`], outcome: state, at: new Date(finishedAtMs).toISOString() }],
  };
  return { view, spec, ...(over.idempotencyKey ? { idempotencyKey: over.idempotencyKey } : {}) };
}

/** An audit hash chain of records `from`..`to`, continuing from `prevHash`, as the audit log writes it. */
export function auditChain(count: number, start: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH }): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = start.hash;
  for (let seq = start.seq + 1; seq <= start.seq + count; seq++) {
    const base = { seq, atMs: 1_790_000_000_000 + seq, actor: { kind: 'tenant' as const, name: seq % 2 ? 'beijing' : 'shanghai' }, action: seq % 3 ? 'job.submit' : 'job.cancel', target: `j${seq}`, outcome: 'ok' as const, details: { note: 'nul \u0000 é' }, prevHash: prev };
    const record = { ...base, hash: hashRecord(base) };
    out.push(record);
    prev = record.hash;
  }
  return out;
}

/** Row counts of the archive's tables. */
export async function tableCounts(db: pg.Pool): Promise<Record<'jobs' | 'segments' | 'audit', number>> {
  const { rows } = await db.query<{ jobs: number; segments: number; audit: number }>(
    'SELECT (SELECT count(*) FROM archived_jobs) AS jobs, (SELECT count(*) FROM usage_segments) AS segments, (SELECT count(*) FROM archived_audit) AS audit',
  );
  return rows[0];
}
