/**
 * Accounting archive benchmark: how fast the writer moves finished jobs, metered usage and audit records
 * into a private PostgreSQL (fsync on, as in production), what an offer costs the caller, and how much
 * room each record takes.
 *
 *   npm run bench:archive                     # 50,000 jobs, each with a task of 2 usage segments and an audit record
 *   npm run bench:archive -- --jobs 200000 --segments 24
 */
import { Command } from 'commander';
import { openArchive, type ArchivedJob } from '../src/archive';
import { startPostgres } from '../harness/postgres';
import { jobSpecSchema, type JobView, type TaskUsage } from '../src/protocol';
import { GENESIS_HASH, hashRecord, type AuditRecord } from '../src/store/audit-log';

const opts = new Command()
  .option('--jobs <n>', 'finished jobs to archive', '50000')
  .option('--segments <n>', 'usage segments (clock hours) per task', '2')
  .parse()
  .opts<{ jobs: string; segments: string }>();
const jobs = Number(opts.jobs);
const segments = Number(opts.segments);
const T0 = Date.parse('2026-11-01T00:00:00Z');

function job(n: number): ArchivedJob {
  const spec = jobSpecSchema.parse({ name: `etl-${n}`, pool: 'general', resources: { cpuMillis: 4000, memBytes: 16 << 30 }, command: ['python3', 'etl.py', '--day', String(n % 30)], labels: { team: 'traffic' } });
  const at = (ms: number) => new Date(T0 + n * 1000 + ms).toISOString();
  const view: JobView = {
    id: `j${n.toString(36).padStart(12, '0')}`,
    name: spec.name,
    tenant: ['beijing', 'shanghai', 'guangzhou'][n % 3],
    pool: 'general',
    priorityClass: 'normal',
    dataClass: 'public',
    state: n % 50 === 0 ? 'failed' : 'succeeded',
    tasks: 1,
    resources: spec.resources,
    attempts: 1,
    maxAttempts: 3,
    attemptId: `j${n}-a1`,
    placement: [{ taskIndex: 0, nodeId: `gen-${String(n % 400).padStart(4, '0')}`, cpuMillis: 4000, memBytes: 16 << 30, gpuIndices: [], gpuMilliEach: 0, state: 'succeeded', exitCode: 0 }],
    exitCode: 0,
    submittedAt: at(0),
    placedAt: at(2),
    startedAt: at(40),
    finishedAt: at(3_600_000),
    history: [{ attemptId: `j${n}-a1`, nodes: [`gen-${String(n % 400).padStart(4, '0')}`], outcome: 'succeeded', at: at(3_600_000) }],
  };
  return { view, spec };
}

function usage(n: number): TaskUsage {
  return {
    jobId: job(n).view.id,
    attemptId: `j${n}-a1`,
    taskIndex: 0,
    tenant: ['beijing', 'shanghai', 'guangzhou'][n % 3],
    pool: 'general',
    nodeId: `gen-${n % 400}`,
    billingClass: 'standard',
    segments: Array.from({ length: segments }, (_, i) => ({ hourStartMs: T0 + i * 3_600_000, runMs: 1_800_000, cpuMilliSeconds: 7_200_000, gpuMilliSeconds: {}, memMiBSeconds: 29_491_200, energyMilliWh: 61_234, greenMilliWh: 30_617, carbonMg: 16_838 })),
  };
}

const pg = await startPostgres({ durable: true });
const archive = openArchive({ url: pg.url, writer: { maxBufferedRecords: 3 * jobs + 10, maxBatchRecords: 500 } });
try {
  // Built before timing: the scheduler has these objects already.
  const records = Array.from({ length: jobs }, (_, i) => ({ job: job(i + 1), usage: usage(i + 1) }));
  const audit: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= jobs; seq++) {
    const base = { seq, atMs: T0 + seq, actor: { kind: 'tenant' as const, name: 'beijing' }, action: 'job.submit', target: `j${seq}`, outcome: 'ok' as const, prevHash: prev };
    audit.push({ ...base, hash: (prev = hashRecord(base)) });
  }
  const started = performance.now();
  let offerMs = 0;
  for (let i = 0; i < jobs; i++) {
    const t = performance.now();
    archive.writer.enqueueJob(records[i].job, { log: 'QY_JOBS', seq: i + 1 });
    archive.writer.enqueueUsage(records[i].usage, { log: 'QY_JOBS', seq: i + 1 });
    archive.writer.enqueueAudit([audit[i]]);
    archive.writer.markApplied('QY_JOBS', i + 1);
    offerMs += performance.now() - t;
    // Let the writer run between offers, as it does between the scheduler's event-loop turns.
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  if (!(await archive.writer.flush(600_000))) throw new Error('the archive did not catch up');
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await archive.db.query<{ jobs: number; segments: number; audit: number }>(
    "SELECT pg_total_relation_size('archived_jobs') AS jobs, pg_total_relation_size('usage_segments') AS segments, pg_total_relation_size('archived_audit') AS audit",
  );
  const counts = await archive.reader.counts();
  const result = {
    jobs,
    records: 3 * jobs,
    recordsPerSec: Math.round((3 * jobs) / seconds),
    jobsPerSec: Math.round(jobs / seconds),
    offerMicrosPerRecord: Math.round(((offerMs * 1000) / (3 * jobs)) * 100) / 100,
    archivedThrough: archive.writer.archivedThrough('QY_JOBS'),
    bytesPerJob: Math.round(rows[0].jobs / counts.jobs),
    bytesPerSegment: Math.round(rows[0].segments / counts.usageSegments),
    bytesPerAuditRecord: Math.round(rows[0].audit / counts.auditRecords),
  };
  console.log(`archived ${jobs} jobs, ${counts.usageSegments} usage segments and ${counts.auditRecords} audit records in ${seconds.toFixed(1)} s`);
  console.log(`${result.recordsPerSec} records/s; an offer costs the caller ${result.offerMicrosPerRecord} µs; on disk (with indexes): ${result.bytesPerJob} B/job, ${result.bytesPerSegment} B/segment, ${result.bytesPerAuditRecord} B/audit record`);
  console.log(JSON.stringify(result));
} finally {
  await archive.close(0);
  await pg.dispose();
}
