import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as HttpAgent, fetch } from 'undici';
import { statusReportSchema, type JobSpecInput, type Pool, type StatusReport } from '../protocol';
import { JobLog, TermFence } from '../store/job-log';
import { connectNats } from '../store/nats';
import { startNatsServer } from './nats-server';
import { spawnScheduler, spawnSimAgent } from './processes';
import { waitForReadyNodes } from './stack';
import { writeTenantsFile } from './tenants';
import { waitUntil } from './wait';
import { createLogger, type Logger } from '../telemetry/logger';

/** The failover scenario: two scheduler replicas, a steady submission load, kill -9 of the leader. */
export interface FailoverOptions {
  /** Submissions per second, steady (open model: they go out on schedule). */
  rate: number;
  /** Seconds of load before the kill, and after it. */
  beforeKillSeconds: number;
  afterKillSeconds: number;
  /** Simulated nodes (general pool jobs of `jobSeconds` each, whole seconds). */
  nodes: number;
  jobSeconds: number;
  /** Lease timings of both replicas. */
  lease: { durationMs: number; renewDeadlineMs: number; retryMs: number };
  /** How long acknowledged jobs may take to finish after the load stops. */
  drainTimeoutMs: number;
  /**
   * What happens to the leader: `kill` (kill -9), or `pause` (SIGSTOP until the standby leads, then SIGCONT:
   * a leader that wakes up believing it still leads, as after a long GC pause or a partition).
   */
  fault?: 'kill' | 'pause';
  log?: Logger;
}

export interface FailoverResult {
  /** From the kill to the standby answering as leader (/readyz?role=leader). */
  takeoverMs: number;
  /** The longest time without any placement, across the kill (from the job log's placement times). */
  placementGapMs: number;
  /** Distinct jobs acknowledged (202) to the load generator. */
  acked: number;
  /** Acknowledged jobs that are not succeeded at the end (unknown to the new leader, failed, or still running). */
  lost: number;
  /** Acknowledged submissions stored as two jobs, plus jobs whose work ran in more than one attempt. */
  duplicates: number;
  /** Events in the job log that the term fence keeps out of history (a deposed leader's late writes). */
  fencedEvents: number;
  /** The leaders' terms, before and after. */
  termBefore: number;
  termAfter: number;
  /** Submissions refused or failed on the way (then retried against the other replica with the same Idempotency-Key). */
  retries: number;
  /** What the standby answered to a write while the leader lived. */
  standbyRefusal: { status: number; code: string; leaderHeader: string | null };
  /** With `fault: 'pause'`: the old leader's role once it has woken up (it must be a standby). */
  oldLeaderRole?: string;
}

interface Readiness {
  ready: boolean;
  role: 'leader' | 'standby' | 'partial';
  pools: Record<Pool, { role: 'leader' | 'standby'; leader?: { replica: string; url: string; term: number } }>;
}

/**
 * Runs the scenario on this machine: nats-server, replicas `a` (the leader) and `b` (standby), and an agent
 * simulating the nodes, each its own process. A client submits at a steady rate with an Idempotency-Key
 * per job, to the replica it believes leads; on a connection error or a 503 it tries the other replica.
 * After `beforeKillSeconds` the leader gets kill -9. At the end, every acknowledged job must finish, once.
 */
export async function runFailoverScenario(options: FailoverOptions): Promise<FailoverResult> {
  const dir = mkdtempSync(join(tmpdir(), 'qy-failover-'));
  const tenantsFile = join(dir, 'tenants.yaml');
  const tokens = writeTenantsFile(tenantsFile, { operators: ['ops'], tenants: [{ name: 'city', requestsPerSecond: 1_000_000 }] });
  const stoppers: (() => Promise<unknown>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const http = new HttpAgent({ connections: 64 });
  stoppers.push(() => http.close());
  try {
    const nats = await startNatsServer();
    stoppers.push(() => nats.dispose());
    const env = (replica: string): Record<string, string> => ({
      QY_LOG_LEVEL: 'error',
      QY_TENANTS_FILE: tenantsFile,
      QY_REPLICA_ID: replica,
      QY_LEASE_DURATION_MS: String(options.lease.durationMs),
      QY_LEASE_RENEW_DEADLINE_MS: String(options.lease.renewDeadlineMs),
      QY_LEASE_RETRY_MS: String(options.lease.retryMs),
      QY_HEARTBEAT_INTERVAL_MS: '500',
      QY_SUSPECT_AFTER_MS: '3000',
      QY_DOWN_AFTER_MS: '30000',
    });
    const a = await spawnScheduler(nats.url, { env: env('replica-a') });
    stoppers.push(() => a.kill9());
    const b = await spawnScheduler(nats.url, { env: env('replica-b'), role: 'any' });
    stoppers.push(() => b.stop());
    const agent = spawnSimAgent(nats.url, options.nodes, 'fo', { QY_LOG_LEVEL: 'error', QY_HEARTBEAT_INTERVAL_MS: '500' });
    stoppers.push(() => agent.stop());
    const auth = { authorization: `Bearer ${tokens.city}`, 'content-type': 'application/json' };
    const readiness = async (url: string): Promise<Readiness | undefined> => {
      try {
        return (await (await fetch(`${url}/readyz`, { dispatcher: http })).json()) as Readiness;
      } catch {
        return undefined;
      }
    };
    await waitUntil(async () => ((await readiness(b.url))?.pools.general.leader?.replica === 'replica-a' ? true : undefined), 30_000, () => 'the standby does not see the leader');
    await waitForReadyNodes(a.url, tokens.ops, options.nodes, 60_000, () => `nodes did not register:\n${agent.output()}`);

    // A write to the standby while the leader lives: refused, naming the leader.
    const refused = await fetch(`${b.url}/v1/jobs`, { method: 'POST', headers: auth, body: JSON.stringify(spec(options.jobSeconds)), dispatcher: http });
    const standbyRefusal = { status: refused.status, code: ((await refused.json()) as { code: string }).code, leaderHeader: refused.headers.get('x-qy-leader') };
    const termBefore = (await readiness(a.url))?.pools.general.leader?.term ?? 0;

    const urls = [a.url, b.url];
    let current = 0;
    let retries = 0;
    const acked = new Map<string, string>();
    const submit = async (key: string, deadlineMs: number): Promise<void> => {
      while (Date.now() < deadlineMs) {
        const url = urls[current];
        // A connection error (the replica is gone) or a 503 (not the leader, not ready) sends the retry elsewhere.
        const res = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { ...auth, 'idempotency-key': key }, body: JSON.stringify(spec(options.jobSeconds)), dispatcher: http }).catch(() => undefined);
        const body = res ? ((await res.json().catch(() => ({}))) as { id?: string }) : undefined;
        if (res?.status === 202 && body?.id) {
          acked.set(key, body.id);
          return;
        }
        if (res && res.status !== 503) throw new Error(`submission refused: ${res.status} ${JSON.stringify(body)}`);
        retries++;
        if (urls[current] === url) current = 1 - current;
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    const total = Math.round(options.rate * (options.beforeKillSeconds + options.afterKillSeconds));
    const killAt = Math.round(options.rate * options.beforeKillSeconds);
    const startMs = Date.now();
    const inFlight: Promise<void>[] = [];
    let killedAtMs = 0;
    let takeover: Promise<number> | undefined;
    for (let i = 0; i < total; i++) {
      const due = startMs + (i * 1000) / options.rate;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (i === killAt) {
        if (options.fault === 'pause') a.child.kill('SIGSTOP');
        else await a.kill9();
        killedAtMs = Date.now();
        options.log?.info(options.fault === 'pause' ? 'leader paused (SIGSTOP)' : 'leader killed (kill -9)');
        // On its own connection, every 10 ms: the load's connections are busy retrying.
        takeover = (async () => {
          const probe = new HttpAgent({ connections: 1 });
          try {
            while (Date.now() - killedAtMs < 120_000) {
              const res = await fetch(`${b.url}/readyz?role=leader`, { dispatcher: probe }).catch(() => undefined);
              await res?.body?.cancel();
              if (res?.status === 200) {
                const ms = Date.now() - killedAtMs;
                // The old leader wakes up, its lease long gone: it must stop before doing anything as leader.
                if (options.fault === 'pause') a.child.kill('SIGCONT');
                return ms;
              }
              await new Promise((r) => setTimeout(r, 10));
            }
            throw new Error('the standby did not take over within 120 s');
          } finally {
            await probe.close();
          }
        })();
      }
      inFlight.push(submit(`job-${i}`, Date.now() + 120_000));
    }
    const settled = await Promise.allSettled(inFlight);
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    const takeoverMs = await takeover!;
    const termAfter = (await readiness(b.url))?.pools.general.leader?.term ?? 0;
    const oldLeaderRole = options.fault === 'pause' ? await waitUntil(async () => (await readiness(a.url))?.role, 30_000).catch(() => 'unreachable') : undefined;

    // Every acknowledged job must finish on the new leader.
    const ids = [...acked.values()];
    const finished = new Map<string, string>();
    await waitUntil(async () => {
      for (const id of ids) {
        if (finished.get(id) === 'succeeded') continue;
        const res = await fetch(`${b.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${tokens.city}` }, dispatcher: http });
        finished.set(id, res.status === 200 ? ((await res.json()) as { state: string }).state : `http ${res.status}`);
      }
      return ids.every((id) => finished.get(id) === 'succeeded') ? true : undefined;
    }, options.drainTimeoutMs).catch(() => undefined);
    const lost = ids.filter((id) => finished.get(id) !== 'succeeded').length;

    const history = await readHistory(nats.url);
    return {
      takeoverMs,
      placementGapMs: largestGap(history.placementTimes, killedAtMs),
      acked: acked.size,
      lost,
      duplicates: history.duplicateSubmissions + history.jobsRunTwice,
      fencedEvents: history.fenced,
      termBefore,
      termAfter,
      retries,
      standbyRefusal,
      oldLeaderRole,
    };
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  }
}

function spec(seconds: number): JobSpecInput {
  return { pool: 'general', resources: { cpuMillis: 500, memBytes: 256 * 1024 ** 2 }, durationSeconds: seconds };
}

/** What the job log holds, as history (behind the term fence): placement times and signs of duplicated work. */
async function readHistory(natsUrl: string): Promise<{ fenced: number; placementTimes: number[]; duplicateSubmissions: number; jobsRunTwice: number }> {
  const nc = await connectNats(natsUrl, 'failover-reader');
  try {
    const placementTimes: number[] = [];
    const jobsByKey = new Map<string, Set<string>>();
    const attemptsRun = new Map<string, Set<string>>();
    const statuses: StatusReport[] = [];
    // History as the replicas see it: behind the term fence.
    const fence = new TermFence();
    const poolOfJob = new Map<string, Pool>();
    let fenced = 0;
    await new JobLog(nc, createLogger({ name: 'failover', level: 'silent' })).replay((entry) => {
      if (!fence.admits(entry, (e) => (e.type === 'submitted' ? e.spec.pool : poolOfJob.get(e.jobId)))) {
        if (entry.kind === 'event') fenced++;
        return;
      }
      if (entry.kind === 'status') return void statuses.push(statusReportSchema.parse(entry.status));
      if (entry.kind !== 'event') return;
      const e = entry.event;
      if (e.type === 'submitted') {
        poolOfJob.set(e.jobId, e.spec.pool);
        if (e.placed) placementTimes.push(e.submittedAtMs);
        if (e.idempotencyKey) jobsByKey.set(e.idempotencyKey, (jobsByKey.get(e.idempotencyKey) ?? new Set()).add(e.jobId));
      } else if (e.type === 'placed') placementTimes.push(e.atMs);
    });
    for (const s of statuses) if (s.state === 'running' || s.state === 'succeeded') attemptsRun.set(s.jobId, (attemptsRun.get(s.jobId) ?? new Set()).add(s.attemptId));
    return {
      fenced,
      placementTimes: placementTimes.sort((x, y) => x - y),
      duplicateSubmissions: [...jobsByKey.values()].reduce((n, jobs) => n + jobs.size - 1, 0),
      jobsRunTwice: [...attemptsRun.values()].filter((a) => a.size > 1).length,
    };
  } finally {
    await nc.close();
  }
}

/** The longest stretch without a placement that contains the moment of the kill. */
function largestGap(sorted: number[], killedAtMs: number): number {
  let before = -Infinity;
  let after = Infinity;
  for (const t of sorted) {
    if (t <= killedAtMs) before = t;
    else {
      after = t;
      break;
    }
  }
  return Number.isFinite(before) && Number.isFinite(after) ? after - before : NaN;
}

