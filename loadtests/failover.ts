import { SchedulerApiError, SchedulerClient } from '../src/client';
import { startLocalStack } from '../harness/stack';
import { waitUntil } from '../harness/wait';
import { SYNTHETIC_ROUND, waitHistorySettled, writeHistoryInRounds } from '../harness/history';
import { HEADERS, statusReportSchema, type JobSpecInput, type Pool, type StatusReport } from '../src/protocol';
import { JobLog, TermFence } from '../src/store/job-log';
import { connectNats } from '../src/store/nats';
import { createLogger, type Logger } from '../src/telemetry/logger';
import { constantProfile, runOpenModel } from './engine';

/** The failover scenario: two scheduler replicas, a steady submission load, kill -9 of the leader. */
export interface FailoverOptions {
  /** Submissions per second, steady (open model: they go out on schedule). */
  rate: number;
  /** Seconds of load before the kill, and after it. */
  beforeKillSeconds: number;
  afterKillSeconds: number;
  /** Virtual nodes (general pool jobs of `jobSeconds` each, whole seconds). */
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
  /**
   * Finished jobs of history written to the job log before the load (synthetic, as `bench:recovery` writes
   * them), with an accounting archive: taken in (archived, let go from memory after a short retention, covered
   * by a snapshot) before the load starts, so the takeover shows whether it grows with history. 0: none, no archive.
   */
  history?: number;
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

/**
 * Runs the scenario on this machine: nats-server, replicas `a` (the leader) and `b` (standby), and an agent
 * of the virtual nodes, each its own process (the local stack). The load engine submits at a steady rate, an
 * Idempotency-Key per job, through a SchedulerClient that knows both replicas: it sends to the one it believes
 * leads, follows a standby to the leader it names, and on a connection error or a 503 tries again with backoff.
 * When arrival `rate × beforeKillSeconds` falls due the leader gets kill -9 (or SIGSTOP). At the end, every
 * acknowledged job must finish, once.
 */
export async function runFailoverScenario(options: FailoverOptions): Promise<FailoverResult> {
  const historyJobs = options.history ?? 0;
  const stack = await startLocalStack({
    database: historyJobs > 0,
    nodes: options.nodes,
    prefix: PREFIX,
    tenants: [{ name: 'city', requestsPerSecond: 1_000_000 }],
    replicas: 2,
    schedulerEnv: (i) => ({
      QY_REPLICA_ID: `replica-${'ab'[i]}`,
      QY_LEASE_DURATION_MS: String(options.lease.durationMs),
      QY_LEASE_RENEW_DEADLINE_MS: String(options.lease.renewDeadlineMs),
      QY_LEASE_RETRY_MS: String(options.lease.retryMs),
      QY_HEARTBEAT_INTERVAL_MS: '500',
      QY_SUSPECT_AFTER_MS: '3000',
      QY_DOWN_AFTER_MS: '30000',
      // History leaves memory soon and is covered by a snapshot; the scenario's own entries stay in the log
      // (the margin keeps them from compaction) for the check of duplicates and of the placement gap.
      ...(historyJobs > 0 ? { QY_JOB_RETENTION_MS: '10000', QY_SNAPSHOT_INTERVAL_MS: '5000', QY_SNAPSHOT_EVERY_ENTRIES: String(SYNTHETIC_ROUND), QY_COMPACTION_MARGIN_ENTRIES: '200000' } : {}),
    }),
    agentEnv: { QY_HEARTBEAT_INTERVAL_MS: '500' },
    readyTimeoutMs: 60_000,
  });
  const [a, b] = stack.replicas;
  // Submissions wait for the failover as long as the drain allows, retrying every 50–250 ms.
  const load = new SchedulerClient({ url: [a.url, b.url], token: stack.tokens.city, connections: 64, timeoutMs: 120_000, retry: { attempts: Infinity, initialDelayMs: 50, maxDelayMs: 250, deadlineMs: 120_000 } });
  // Readiness on a connection of its own: the load's are busy retrying.
  const probe = new SchedulerClient({ url: b.url, connections: 1 });
  const readiness = (url: string) => probe.readiness({}, { url }).catch(() => undefined);
  try {
    await waitUntil(async () => ((await readiness(b.url))?.pools.general.leader?.replica === 'replica-a' ? true : undefined), 30_000, () => 'the standby does not see the leader');
    if (historyJobs > 0) {
      // Taken in by both replicas, then covered by a snapshot that holds none of it: a takeover loads only live state.
      const target = { natsUrl: stack.natsUrl, urls: [a.url, b.url] };
      await writeHistoryInRounds(target, { count: historyJobs, offset: 0, nodeId: `${PREFIX}-gen-00000`, tenant: 'city', afterRound: (written) => options.log?.info({ written }, 'history written') });
      await waitHistorySettled(target, 1_000);
    }

    // A write to the standby while the leader lives: refused, naming the leader.
    const refused = await load.send<{ code: string }>('POST', '/v1/jobs', { body: spec(options.jobSeconds), url: b.url });
    const standbyRefusal = { status: refused.status, code: refused.body.code, leaderHeader: refused.headers.get(HEADERS.leader) };
    const termBefore = (await readiness(a.url))?.pools.general.leader?.term ?? 0;

    const acked = new Map<string, string>();
    const submit = async (key: string): Promise<void> => {
      try {
        acked.set(key, (await load.submit(spec(options.jobSeconds), { idempotencyKey: key })).id);
      } catch (err) {
        // Still unanswered, or still 503, when the retries' deadline passed: not acknowledged, so not owed.
        if (!(err instanceof SchedulerApiError) || (err.statusCode !== 0 && err.statusCode !== 503)) throw err;
      }
    };
    const killAt = Math.round(options.rate * options.beforeKillSeconds);
    let killedAtMs = 0;
    let takeover: Promise<number> | undefined;
    const fault = () => {
      if (options.fault === 'pause') a.child.kill('SIGSTOP');
      else void a.kill9();
      killedAtMs = Date.now();
      options.log?.info(options.fault === 'pause' ? 'leader paused (SIGSTOP)' : 'leader killed (kill -9)');
      // Every 10 ms, on the probe's own connection.
      takeover = (async () => {
        while (Date.now() - killedAtMs < 120_000) {
          if ((await probe.readiness({ role: 'leader' }).catch(() => undefined))?.ready) {
            const ms = Date.now() - killedAtMs;
            // The old leader wakes up, its lease long gone: it must stop before doing anything as leader.
            if (options.fault === 'pause') a.child.kill('SIGCONT');
            return ms;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error('the standby did not take over within 120 s');
      })();
    };
    await runOpenModel(constantProfile(options.rate, options.beforeKillSeconds + options.afterKillSeconds), {
      send: (seq) => {
        if (seq === killAt) fault();
        return submit(`job-${seq}`);
      },
    });
    const takeoverMs = await takeover!;
    const termAfter = (await readiness(b.url))?.pools.general.leader?.term ?? 0;
    const oldLeaderRole = options.fault === 'pause' ? await waitUntil(async () => (await readiness(a.url))?.role, 30_000).catch(() => 'unreachable') : undefined;

    // Every acknowledged job must finish on the new leader.
    const ids = [...acked.values()];
    const finished = new Map<string, string>();
    await waitUntil(async () => {
      for (const id of ids) {
        if (finished.get(id) === 'succeeded') continue;
        const state = await load.job(id, { url: b.url }).then(
          (job) => job.state,
          (err: unknown) => `http ${err instanceof SchedulerApiError ? err.statusCode : 0}`,
        );
        finished.set(id, state);
      }
      return ids.every((id) => finished.get(id) === 'succeeded') ? true : undefined;
    }, options.drainTimeoutMs).catch(() => undefined);
    const lost = ids.filter((id) => finished.get(id) !== 'succeeded').length;

    const history = await readHistory(stack.natsUrl);
    return {
      takeoverMs,
      placementGapMs: largestGap(history.placementTimes, killedAtMs),
      acked: acked.size,
      lost,
      duplicates: history.duplicateSubmissions + history.jobsRunTwice,
      fencedEvents: history.fenced,
      termBefore,
      termAfter,
      retries: load.stats.retries,
      standbyRefusal,
      oldLeaderRole,
    };
  } finally {
    await load.close();
    await probe.close();
    // The old leader is killed outright: it may still be paused.
    await a.kill9();
    await stack.stop();
  }
}

/** Prefix of the virtual nodes. */
const PREFIX = 'fo';

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

