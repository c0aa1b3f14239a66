import pg from 'pg';

/** int8 columns (bigint, count(*)) as numbers: every archived quantity is an integer well below 2^53. */
const INT8_OID = 20;
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${value} from the archive is beyond the exact integer range of a number`);
  return n;
}
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

export interface ArchiveDatabaseOptions {
  /** `postgres://user:password@host:port/database` (QY_DATABASE_URL). */
  url: string;
  /** Connections at most: the writer uses one at a time, readers the rest. */
  maxConnections?: number;
  /** A query that takes longer fails, so a hung server cannot hold the writer forever. */
  queryTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Called with errors of idle connections (a restarted server drops them); they are replaced on next use. */
  onIdleError?: (err: Error) => void;
}

/** The archive's connection pool. Idle connections dropped by the server are replaced, not fatal. */
export function openArchiveDatabase(options: ArchiveDatabaseOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'qingyang-scheduler',
    types,
  });
  // Without a listener, an idle connection's error (the server restarting) would crash the process.
  pool.on('error', (err) => options.onIdleError?.(err));
  return pool;
}

/**
 * Runs `work` on one connection of the pool and gives it back. pg listens to a connection's errors only
 * while it is idle in the pool: one checked out that hears the server shut down between two queries
 * (FATAL 57P01) would raise an unhandled 'error' and crash the process. The error is kept here instead,
 * and the connection is dropped on release when the work failed, unless `sound` says the failure left the
 * session usable (a row refused), or when the server spoke up meanwhile.
 */
export async function withConnection<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, sound: (err: unknown) => boolean = () => false): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const heard = (err: Error) => (broken ??= err);
  client.on('error', heard);
  try {
    return await work(client);
  } catch (err) {
    if (!sound(err)) broken ??= err as Error;
    throw err;
  } finally {
    client.removeListener('error', heard);
    client.release(broken);
  }
}

/**
 * Whether an error is about one row's data (SQLSTATE classes 22, data exception, and 23, integrity
 * constraint violation) rather than the database being unreachable, restarting, read-only during a
 * failover, or refusing us: retrying those later helps, retrying a bad row never does.
 */
export function isRowError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$/.test(code);
}
