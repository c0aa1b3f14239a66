import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MIGRATIONS, migrate, openArchiveDatabase, withConnection } from '../../src/archive';
import { startPostgres, type LocalPostgres } from '../../harness/postgres';
import { freshDatabase } from './fixtures';

let cluster: LocalPostgres;
const pools: pg.Pool[] = [];
const open = (url: string) => {
  const pool = openArchiveDatabase({ url });
  pools.push(pool);
  return pool;
};

beforeAll(async () => {
  cluster = await startPostgres({ durable: false });
});

afterAll(async () => {
  for (const pool of pools) await pool.end();
  await cluster?.dispose();
});

const tables = async (db: pg.Pool) =>
  (await db.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")).rows.map((r) => r.tablename);

describe('archive migrations', () => {
  test('a fresh database gets every table; running again changes nothing', async () => {
    const db = open(await freshDatabase(cluster));
    expect(await migrate(db)).toEqual({ applied: MIGRATIONS.map((m) => m.version), version: 1 });
    expect(await tables(db)).toEqual(['archive_watermarks', 'archived_audit', 'archived_jobs', 'schema_migrations', 'usage_segments']);
    expect(await migrate(db)).toEqual({ applied: [], version: 1 });
    const { rows } = await db.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations');
    expect(rows).toEqual([{ version: 1, name: MIGRATIONS[0].name }]);
  });

  test('schedulers starting at once apply each migration once (advisory lock)', async () => {
    const url = await freshDatabase(cluster);
    const dbs = [open(url), open(url), open(url), open(url)];
    const results = await Promise.all(dbs.map((db) => migrate(db)));
    // Exactly one of them applied version 1; the others found it done, none failed.
    expect(results.map((r) => r.applied.length).sort()).toEqual([0, 0, 0, 1]);
    expect(results.every((r) => r.version === 1)).toBe(true);
  });

  test('a migration that fails leaves nothing behind, and the next one is not run', async () => {
    const db = open(await freshDatabase(cluster));
    const broken = [...MIGRATIONS, { version: 2, name: 'broken', sql: 'CREATE TABLE half_done (x int); SELECT * FROM no_such_table;' }, { version: 3, name: 'after', sql: 'CREATE TABLE after_broken (x int)' }];
    await expect(migrate(db, broken)).rejects.toThrow(/archive migration 2 \(broken\) failed: relation "no_such_table" does not exist/);
    expect(await tables(db)).not.toContain('half_done');
    expect(await tables(db)).not.toContain('after_broken');
    expect((await db.query('SELECT version FROM schema_migrations ORDER BY version')).rows).toEqual([{ version: 1 }]);
    // The lock was released: a fixed migration runs.
    expect(await migrate(db, [...MIGRATIONS, { version: 2, name: 'fixed', sql: 'CREATE TABLE fixed (x int)' }])).toEqual({ applied: [2], version: 2 });
  });

  test('a database newer than this code (a rolling upgrade) is left as it is', async () => {
    const db = open(await freshDatabase(cluster));
    await migrate(db, [...MIGRATIONS, { version: 9, name: 'from the future', sql: 'CREATE TABLE future (x int)' }]);
    expect(await migrate(db)).toEqual({ applied: [], version: 9 });
  });

  test('a connection the server terminates while checked out between two queries: the work fails, nothing crashes, the pool serves a new one', async () => {
    const db = open(await freshDatabase(cluster));
    const admin = open(cluster.url);
    let firstPid = 0;
    const work = withConnection(db, async (client) => {
      firstPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // Terminated by another session while this one runs no query: pg emits 'error' on the client itself.
      // (Listened for before: the connection may end before the terminating query's answer is read.)
      const ended = new Promise((resolve) => client.once('end', resolve));
      await admin.query('SELECT pg_terminate_backend($1)', [firstPid]);
      await ended;
      await client.query('SELECT 1');
    });
    await expect(work).rejects.toThrow();
    const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(rows[0].pid).not.toBe(firstPid);
  });
});
