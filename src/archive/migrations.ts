import type pg from 'pg';
import { withConnection } from './database';

/**
 * The archive's schema, as versioned migrations the scheduler runs at start. A migration is never edited
 * once released: a change is a new version. Tables live in the connection's schema (its search_path),
 * so operators choose it with the role or the URL.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs, usage segments, audit records, watermarks',
    sql: `
      -- Ids sort in submission order byte by byte (as JavaScript compares them): the C collation keeps
      -- cursor paging in that order whatever the database's default collation is.
      CREATE TABLE archived_jobs (
        id text COLLATE "C" PRIMARY KEY,
        tenant text NOT NULL,
        pool text NOT NULL,
        state text NOT NULL,
        name text,
        priority_class text NOT NULL,
        data_class text NOT NULL,
        tasks integer NOT NULL,
        submitted_at_ms bigint NOT NULL,
        started_at_ms bigint,
        finished_at_ms bigint NOT NULL,
        attempts integer NOT NULL,
        exit_code integer,
        signal text,
        reason text,
        node_list text,
        idempotency_key text,
        -- json, not jsonb: kept as written (jsonb would refuse a \\u0000 in a job's env and reorder keys).
        spec json NOT NULL,
        view json NOT NULL,
        archived_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX archived_jobs_tenant_id ON archived_jobs (tenant, id);
      CREATE INDEX archived_jobs_finished ON archived_jobs (finished_at_ms);
      CREATE INDEX archived_jobs_submitted ON archived_jobs (submitted_at_ms);
      CREATE INDEX archived_jobs_idempotency ON archived_jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;

      CREATE TABLE usage_segments (
        attempt_id text NOT NULL,
        task_index integer NOT NULL,
        segment_index integer NOT NULL,
        job_id text NOT NULL,
        tenant text NOT NULL,
        pool text NOT NULL,
        node_id text NOT NULL,
        billing_class text NOT NULL,
        hour_start_ms bigint NOT NULL,
        run_ms bigint NOT NULL,
        cpu_milli_seconds bigint NOT NULL,
        gpu_milli_seconds json NOT NULL,
        mem_mib_seconds bigint NOT NULL,
        energy_milli_wh bigint NOT NULL,
        green_milli_wh bigint NOT NULL,
        carbon_mg bigint NOT NULL,
        archived_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (attempt_id, task_index, segment_index)
      );
      CREATE INDEX usage_segments_hour ON usage_segments (hour_start_ms);
      CREATE INDEX usage_segments_tenant_hour ON usage_segments (tenant, hour_start_ms);
      CREATE INDEX usage_segments_job ON usage_segments (job_id);

      CREATE TABLE archived_audit (
        seq bigint PRIMARY KEY,
        at_ms bigint NOT NULL,
        actor_kind text NOT NULL,
        actor_name text NOT NULL,
        action text NOT NULL,
        target text,
        outcome text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        -- The record exactly as it was chained: its hash covers this content.
        record text NOT NULL,
        archived_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX archived_audit_at ON archived_audit (at_ms);

      -- How far each log is archived: every record from positions up to through_seq is stored.
      CREATE TABLE archive_watermarks (
        log text PRIMARY KEY,
        through_seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/** Any constant; all the scheduler's replicas take the same advisory lock around migrations. */
const MIGRATION_LOCK_KEY = 7_163_615_418_321_213;

export interface MigrationResult {
  /** Versions this call applied (empty when the schema was up to date). */
  applied: number[];
  /** The highest version in the database afterwards (it may be newer than this code knows, during a rolling upgrade). */
  version: number;
}

/**
 * Brings the schema up to date. Replicas starting together take turns under a session advisory lock, so
 * each migration runs once; each runs in its own transaction with its row in `schema_migrations`, so a
 * crash leaves either all of it or none. Running it again does nothing.
 */
export async function migrate(pool: pg.Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  // A connection that failed may hold the lock in a broken session: withConnection drops it rather than reuse it.
  return withConnection(pool, async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      const applied: number[] = [];
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`archive migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.version);
        done.add(m.version);
      }
      return { applied, version: Math.max(0, ...done) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  });
}
