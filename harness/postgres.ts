import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports';
import { startDaemon, type Daemon } from './processes';
import { waitUntil } from './wait';

const run = promisify(execFile);

/** The database the scheduler's archive lives in, created on first start. */
const DATABASE = 'qingyang';
/** The superuser's password, kept beside the cluster's files (mode 0600) so a later start can connect. */
const PASSWORD_FILE = 'qy-password';

/** A private PostgreSQL cluster on a loopback port, for the demo, the tests and the benchmarks. */
export interface LocalPostgres {
  /** `postgres://postgres:…@127.0.0.1:<port>/qingyang`: what QY_DATABASE_URL takes. */
  url: string;
  port: number;
  dataDir: string;
  /** Process id of the running postmaster. */
  readonly pid: number | undefined;
  /** Fast shutdown (SIGINT: open sessions are ended, then a checkpoint); resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Stops it and removes its data when the data folder was temporary. */
  dispose(): Promise<void>;
}

export interface PostgresOptions {
  /** The cluster's data folder, created by initdb when it holds no cluster yet; a temporary folder when absent. */
  dataDir?: string;
  port?: number;
  /**
   * Keep fsync and synchronous commit (default true). Tests turn them off: a test cluster is thrown away,
   * and fsync on a busy shared disk would make them slow without proving anything.
   */
  durable?: boolean;
  /** Folder of initdb and postgres; found when absent (see `postgresBinDir`). */
  binDir?: string;
}

/**
 * The folder of PostgreSQL's server binaries: Debian keeps them under /usr/lib/postgresql/<major>/bin (the
 * newest major installed wins), out of PATH; elsewhere they are usually on PATH.
 */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length > 0) return join(root, majors[0], 'bin');
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
  throw new Error('PostgreSQL server binaries (initdb, postgres) not found: install the Debian package postgresql (npm run setup does)');
}

/** The user the server runs as: `postgres` when we are root (it refuses to run as root), else ourselves. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    throw new Error('running as root, and there is no postgres user to run PostgreSQL as (the Debian package postgresql creates it)');
  }
}

/** Creates a folder the server's user owns and alone may enter. */
function ownedDir(dir: string, user: { uid: number; gid: number } | undefined): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
}

/** Runs initdb as the server's user: UTF-8, C collation, password authentication on loopback. */
async function initCluster(binDir: string, dataDir: string, user: { uid: number; gid: number } | undefined, durable: boolean): Promise<string> {
  const password = randomBytes(18).toString('base64url');
  // initdb reads the password from a file its user can read; the file lives only while it runs.
  const pwDir = mkdtempSync(join(tmpdir(), 'qy-pgpw-'));
  const pwFile = join(pwDir, 'pw');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (user) {
    chownSync(pwDir, user.uid, user.gid);
    chownSync(pwFile, user.uid, user.gid);
  }
  try {
    ownedDir(dataDir, user);
    const args = ['-D', dataDir, '-U', 'postgres', `--pwfile=${pwFile}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-instructions'];
    if (!durable) args.push('--no-sync');
    await run(join(binDir, 'initdb'), args, { uid: user?.uid, gid: user?.gid, cwd: tmpdir() });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const hint = /ermission denied/.test(e.stderr ?? '') ? ` (the ${user ? 'postgres' : 'current'} user must be able to reach ${dataDir}: every folder above it must be searchable by it)` : '';
    throw new Error(`initdb into ${dataDir} failed: ${e.stderr?.trim() || e.message}${hint}`, { cause: err });
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
  const kept = join(dataDir, PASSWORD_FILE);
  writeFileSync(kept, password, { mode: 0o600 });
  if (user) chownSync(kept, user.uid, user.gid);
  return password;
}

/**
 * Starts a PostgreSQL cluster of its own: initdb (as the `postgres` user when we are root) into the data
 * folder if it holds no cluster yet, then `postgres` listening on 127.0.0.1 only, on a free port, without
 * a Unix socket. Resolves once it answers queries and the `qingyang` database exists.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<LocalPostgres> {
  const temporary = options.dataDir === undefined;
  const root = temporary ? mkdtempSync(join(tmpdir(), 'qy-pg-')) : undefined;
  const dataDir = resolve(options.dataDir ?? join(root!, 'data'));
  const durable = options.durable ?? true;
  const binDir = options.binDir ?? postgresBinDir();
  const user = await serverUser();
  if (root && user) chownSync(root, user.uid, user.gid);
  const password = existsSync(join(dataDir, 'PG_VERSION')) ? readPassword(dataDir) : await initCluster(binDir, dataDir, user, durable);
  const port = options.port ?? (await freePort());
  const adminUrl = (db: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  let daemon: Daemon | undefined;

  const launch = async () => {
    const args = ['-D', dataDir, '-p', String(port), '-h', '127.0.0.1', '-k', ''];
    // Small: tests start several clusters on a 2-core machine at once.
    if (!durable) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'shared_buffers=32MB');
    daemon = await startDaemon(join(binDir, 'postgres'), args, () => waitUntil(() => answers(adminUrl('postgres')), 30_000, () => `postgres did not answer on port ${port}`), {
      stopSignal: 'SIGINT',
      stopTimeoutMs: 30_000,
      uid: user?.uid,
      gid: user?.gid,
    });
  };
  const stop = async () => daemon?.stop();

  await launch();
  try {
    await ensureDatabase(adminUrl('postgres'), DATABASE);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: adminUrl(DATABASE),
    port,
    dataDir,
    get pid() {
      return daemon?.child.pid;
    },
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async dispose() {
      await stop();
      if (root) rmSync(root, { recursive: true, force: true });
    },
  };
}

function readPassword(dataDir: string): string {
  const file = join(dataDir, PASSWORD_FILE);
  if (!existsSync(file)) throw new Error(`${dataDir} holds a PostgreSQL cluster that was not made by this project (no ${PASSWORD_FILE}); point QY_DATABASE_URL at it instead`);
  return readFileSync(file, 'utf8').trim();
}

/** True once the server accepts a connection and runs a query (it refuses them while starting up). */
async function answers(url: string): Promise<true | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}
