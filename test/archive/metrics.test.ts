import { execFile } from 'node:child_process';
import type pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ArchiveMetrics, ArchiveWriter, openArchiveDatabase } from '../../src/archive';
import { QY_ERR_ARCHIVE_UNAVAILABLE } from '../../src/errors';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { waitUntil } from '../../harness/wait';
import { auditChain, endedJob } from './fixtures';

let cluster: LocalPostgres;
const pools: pg.Pool[] = [];
const writers: ArchiveWriter[] = [];

beforeAll(async () => {
  cluster = await startPostgres({ durable: false });
});

afterAll(async () => {
  for (const w of writers) await w.close(0);
  for (const p of pools) await p.end();
  await cluster?.dispose();
});

/** `promtool check metrics` on an exposition: what it complains about (empty when nothing). */
function promtoolCheck(text: string): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (_err, stdout, stderr) => resolve(`${stdout}${stderr}`.trim()));
    child.stdin!.end(text);
  });
}

const sample = (text: string, series: string) => text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1];

test('the archive metrics count what the writer does, and promtool finds nothing to complain about', async () => {
  const registry = new Registry();
  const db = openArchiveDatabase({ url: cluster.url });
  pools.push(db);
  // The metrics read the writer, which is built with their hooks.
  const metrics: ArchiveMetrics = new ArchiveMetrics(registry, () => writer);
  const writer = new ArchiveWriter(db, { lingerMs: 5, hooks: metrics.hooks });
  writers.push(writer);
  writer.start();
  writer.enqueueJob(endedJob(1));
  writer.enqueueJob(endedJob(2));
  writer.enqueueAudit(auditChain(3));
  expect(await writer.flush(20_000)).toBe(true);
  const text = await registry.metrics();
  expect(sample(text, 'qy_archive_rows_written_total{table="job"}')).toBe('2');
  expect(sample(text, 'qy_archive_rows_written_total{table="audit"}')).toBe('3');
  expect(sample(text, 'qy_archive_rows_written_total{table="usage"}')).toBe('0');
  expect(sample(text, 'qy_archive_lag_seconds')).toBe('0');
  expect(sample(text, 'qy_archive_up')).toBe('1');
  expect(sample(text, 'qy_archive_batch_duration_seconds_count')).not.toBe('0');
  expect(await promtoolCheck(text)).toBe('');
});

test('a database that is down shows as lag, buffered records and write errors', async () => {
  let nowMs = 5_000_000;
  const registry = new Registry();
  const metrics: ArchiveMetrics = new ArchiveMetrics(registry, () => writer);
  const db = openArchiveDatabase({ url: 'postgres://nobody:x@127.0.0.1:1/none', connectTimeoutMs: 200 });
  pools.push(db);
  const writer = new ArchiveWriter(db, { lingerMs: 5, retryInitialMs: 50, retryMaxMs: 100, now: () => nowMs, hooks: metrics.hooks });
  writers.push(writer);
  writer.enqueueJob(endedJob(1));
  nowMs += 42_000;
  await waitUntil(() => (writer.isAvailable() === false ? true : undefined), 10_000);
  const text = await registry.metrics();
  expect(sample(text, 'qy_archive_lag_seconds')).toBe('42');
  expect(sample(text, 'qy_archive_buffered_records')).toBe('1');
  expect(sample(text, 'qy_archive_up')).toBe('0');
  expect(Number(sample(text, 'qy_archive_write_errors_total{cause="unavailable"}'))).toBeGreaterThan(0);
  expect(await promtoolCheck(text)).toBe('');
});

test('QY_ERR_ARCHIVE_UNAVAILABLE is a 503 that names the cause', () => {
  const err = new QY_ERR_ARCHIVE_UNAVAILABLE('connect ECONNREFUSED 127.0.0.1:5432');
  expect({ code: err.code, statusCode: err.statusCode, message: err.message }).toEqual({
    code: 'QY_ERR_ARCHIVE_UNAVAILABLE',
    statusCode: 503,
    message: 'The accounting archive (PostgreSQL) is unavailable: connect ECONNREFUSED 127.0.0.1:5432',
  });
});
