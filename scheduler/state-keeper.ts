import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Archive } from '../src/archive';
import { archivedAuditPrefix, readWatermarks } from '../src/archive/watermarks';
import type { AuditLog } from '../src/store/audit-log';
import type { DeferralPlanner } from '../src/green';
import { TERMINAL_JOB_STATES, type Pool } from '../src/protocol';
import type { JobLog } from '../src/store/job-log';
import type { SnapshotStore } from '../src/store/snapshot-store';
import type { Logger } from '../src/telemetry/logger';
import type { Clock, Timer } from '../src/time';
import type { SchedulerConfig } from './config';
import type { JobStore } from './job-store';
import type { LeadershipView } from './leadership';
import { captureSnapshot, decodeSnapshot, encodeSnapshot, SNAPSHOT_VERSION, type StateSnapshot } from './state/snapshot';
import { archivedJobOf } from './state/views';
import { FAILPOINTS, failpoint } from '../src/failpoints';
import { pacer } from '../src/time';
import { isUnavailable } from '../src/store/nats';

/** The pool whose leader takes snapshots and compacts the log (one replica does, whichever leads it). */
export const KEEPER_POOL: Pool = 'general';
/** How often the keeper looks at what is due. */
const TICK_MS = 1_000;
/**
 * The most of the leader's time snapshots taken by time may take: the next one by time waits at least the
 * last one's duration divided by this (20 times as long) after it.
 */
export const SNAPSHOT_TIME_SHARE = 0.05;

/** The log name a pool's leader archives under: watermarks are per leader scope. */
export function archiveLogOf(pool: Pool): string {
  return `QY_JOBS:${pool}`;
}

/** The state keeper's metrics, on the scheduler's registry. */
export class StateMetrics {
  readonly snapshots: Counter<string>;
  readonly snapshotSeconds: Histogram<string>;
  readonly snapshotBytes: Gauge<string>;
  readonly snapshotSeq: Gauge<string>;
  readonly snapshotJobs: Gauge<string>;
  readonly loadFailures: Counter<string>;
  readonly rebuildsFrom: Counter<string>;
  readonly compactedBelow: Gauge<string>;
  readonly evicted: Counter<string>;

  constructor(registry: Registry, jobsInMemory: () => number) {
    const registers = [registry];
    this.snapshots = new Counter({ name: 'qy_state_snapshots_total', help: 'State snapshots taken, by result (stored, failed).', labelNames: ['result'], registers });
    this.snapshotSeconds = new Histogram({ name: 'qy_state_snapshot_duration_seconds', help: 'Time to capture, encode and store a state snapshot.', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.snapshotBytes = new Gauge({ name: 'qy_state_snapshot_bytes', help: 'Size of the last state snapshot stored (gzipped).', registers });
    this.snapshotSeq = new Gauge({ name: 'qy_state_snapshot_seq', help: 'Job log position of the last state snapshot stored.', registers });
    this.snapshotJobs = new Gauge({ name: 'qy_state_snapshot_jobs', help: 'Jobs held by the last state snapshot stored (live ones, and ended ones not yet let go).', registers });
    this.loadFailures = new Counter({ name: 'qy_state_snapshot_load_failures_total', help: 'Snapshots a rebuild could not use (corrupt, missing, too old), by reason; it fell back to an older one or to a full replay.', labelNames: ['reason'], registers });
    this.rebuildsFrom = new Counter({ name: 'qy_state_rebuilds_from_total', help: 'State rebuilds by source: a snapshot and the log after it, or the whole log.', labelNames: ['source'], registers });
    this.compactedBelow = new Gauge({ name: 'qy_job_log_compacted_below_seq', help: 'Job events and status reports before this position of QY_JOBS have been removed.', registers });
    this.evicted = new Counter({ name: 'qy_jobs_evicted_total', help: 'Finished jobs let go from memory after their retention, once archived.', registers });
    new Gauge({
      name: 'qy_jobs_in_memory',
      help: 'Jobs the scheduler holds in memory: live ones, and finished ones within their retention.',
      registers,
      collect() {
        this.set(jobsInMemory());
      },
    });
  }
}

/**
 * Keeps the scheduler's state bounded, as slurmctld does with MinJobAge and slurmdbd:
 * - archives finished jobs and their usage (the leader of each pool, for its pool);
 * - takes snapshots of the state (the leader of `general`), at a moment when none of its own decisions is in
 *   flight, so a snapshot never holds a decision the log does not; encoding and storing never block placement;
 * - compacts the job log below the second newest snapshot (a corrupt newest one can fall back to it), and,
 *   with an archive, below what every pool's leader has archived, minus a margin for replicas following behind;
 * - lets finished jobs go from memory `QY_JOB_RETENTION_MS` after they end, once the archive holds them.
 * Without an archive nothing leaves memory and the log is compacted below snapshots only.
 */
export class StateKeeper {
  private timer: Timer | undefined;
  private readonly metrics: StateMetrics;
  private snapshotting = false;
  /** A snapshot asked for quiet (nothing in flight) and has not had it yet. */
  private awaitingQuiet = false;
  /**
   * Where and when the last snapshot stored was taken, how many lines (jobs, usage records, deferrals,
   * positions) it had, and how long it took from capture to stored.
   */
  private lastSnapshot = { seq: 0, atMs: 0, lines: 0, tookMs: 0 };
  private lastEvictionMs = 0;
  private compacted = 0;
  /** Jobs let go from memory since the last snapshot stored (a new one is due even if the log has not moved). */
  private evictedSinceSnapshot = 0;
  /** Touched jobs not yet offered to the archive (its buffer was full), by the last position that touched them. */
  private backlog = new Map<string, number>();
  private archiving = false;
  /** The term of each pool as the archiver last saw it led: a pool taken up in a new term is offered whole. */
  private archivedTerms = new Map<Pool, number | undefined>();

  constructor(
    private readonly deps: {
      store: JobStore;
      leadership: LeadershipView;
      jobLog: () => JobLog;
      snapshots: () => SnapshotStore;
      archive: Archive | undefined;
      audit: () => AuditLog;
      planner: DeferralPlanner;
      config: SchedulerConfig;
      registry: Registry;
      clock: Clock;
      log: Logger;
    },
  ) {
    this.metrics = new StateMetrics(deps.registry, () => deps.store.table.jobs.size);
  }

  start(): void {
    this.timer = this.deps.clock.setInterval(() => void this.tick(), TICK_MS);
  }

  stop(): void {
    this.timer?.cancel();
  }

  /**
   * The newest snapshot that loads, falling back to older ones; undefined for a full replay. A snapshot
   * taken before the log was compacted past it is too old to replay from.
   */
  async newestSnapshot(): Promise<StateSnapshot | undefined> {
    const store = this.deps.snapshots();
    for (const seq of await store.positions()) {
      try {
        // A load that NATS could not answer (a timeout while JetStream elects, a lost connection) says
        // nothing of the snapshot: it throws, and the rebuild tries again. Falling back would replay from an older position, or the
        // whole log, which compaction may already have removed below this snapshot.
        const data = await store.load(seq).catch((err: Error) => {
          if (isUnavailable(err)) throw err;
          throw Object.assign(err, { reason: 'corrupt' });
        });
        if (!data) throw Object.assign(new Error('missing'), { reason: 'missing' });
        const snapshot = await decodeSnapshot(data).catch((err: Error) => {
          throw Object.assign(err, { reason: 'corrupt' });
        });
        if (snapshot.seq !== seq) throw Object.assign(new Error(`says position ${snapshot.seq}, stored as ${seq}`), { reason: 'corrupt' });
        this.metrics.rebuildsFrom.inc({ source: 'snapshot' });
        return snapshot;
      } catch (err) {
        const reason = (err as { reason?: string }).reason;
        if (reason === undefined) throw err;
        this.metrics.loadFailures.inc({ reason });
        this.deps.log.error({ err: (err as Error).message, seq }, 'state snapshot unusable; falling back to an older one or to the whole log');
      }
    }
    this.metrics.rebuildsFrom.inc({ source: 'log' });
    return undefined;
  }

  private async tick(): Promise<void> {
    try {
      await this.archiveTouched();
      if (this.deps.leadership.leads(KEEPER_POOL) && this.snapshotDue()) {
        // Waited a whole round for quiet that did not come (steady load): new decisions pause until it does.
        if (this.awaitingQuiet) this.deps.store.hold();
        this.awaitingQuiet = true;
        this.deps.store.whenSettled(() => {
          this.awaitingQuiet = false;
          void this.snapshot();
        });
      }
      if (this.deps.clock.now() - this.lastEvictionMs >= Math.min(30_000, this.deps.config.jobRetentionMs)) await this.evictRetained();
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'state keeping failed this round; trying again');
    }
  }

  /**
   * Offers the finished jobs and usage touched since last time to the archive (the leader of each job's pool).
   * Touched jobs wait in a backlog and are offered in order while the writer has room, with turns for the
   * event loop: after a replay of a long log every job is touched at once, and offering them all in one go
   * (most refused by a full buffer, then offered again each second) held the loop for seconds and cost the
   * leader its lease. The log's watermark is not moved past a job still in the backlog.
   */
  private async archiveTouched(): Promise<void> {
    const { archive, store, leadership } = this.deps;
    const appliedAtDrain = store.appliedSeq;
    const generation = store.generation;
    const touched = store.drainTouched();
    if (!archive) return;
    for (const [jobId, seq] of touched) this.backlog.set(jobId, seq);
    // A pool taken up since last round is offered whole: the jobs a rebuild touched were drained while it
    // led nothing (a replay spans many rounds) and skipped, and its last leader may have been deposed
    // before archiving them. Only what the archive already vouches for has left memory.
    const terms = new Map(leadership.ledPools.map((pool) => [pool, leadership.termOf(pool)] as const));
    for (const [pool, term] of terms) {
      if (this.archivedTerms.get(pool) === term) continue;
      for (const job of store.table.jobs.values()) if (job.spec.pool === pool) this.backlog.set(job.id, store.lastSeqOf(job.id) ?? appliedAtDrain);
    }
    this.archivedTerms = terms;
    if (this.archiving) return;
    this.archiving = true;
    try {
      const pace = pacer();
      for (const [jobId, seq] of this.backlog) {
        if (archive.writer.isSaturated() || store.generation !== generation) break;
        this.backlog.delete(jobId);
        const job = store.table.get(jobId);
        if (!job || !leadership.leads(job.spec.pool)) continue;
        const at = { log: archiveLogOf(job.spec.pool), seq };
        let ok = true;
        for (const usage of store.usage.usageOf(jobId)) ok = archive.writer.enqueueUsage(usage, at) && ok;
        if (TERMINAL_JOB_STATES.has(job.state)) ok = archive.writer.enqueueJob(archivedJobOf(job, store.pending), at) && ok;
        if (!ok) this.backlog.set(jobId, seq);
        await pace();
      }
    } finally {
      this.archiving = false;
    }
    // A rebuild in the meantime emptied memory and touched again every job it put back: the position
    // drained is stale (a job it covers may wait, touched again, for the next round), and marking it would
    // let the watermark pass that job and retention let it go unarchived. (What the backlog still holds of
    // before the rebuild is offered again or dropped if gone; it only holds the watermark lower meanwhile.)
    if (store.generation !== generation) return;
    // Everything of these pools up to the position drained has been offered (or is held back as refused),
    // except what waits in the backlog.
    const floor = new Map<Pool, number>();
    for (const [jobId, seq] of this.backlog) {
      const pool = store.table.get(jobId)?.spec.pool;
      if (pool && seq < (floor.get(pool) ?? Infinity)) floor.set(pool, seq);
    }
    // Only for pools led without a break since the drain: a job skipped while a pool was not led is offered
    // when it is taken up again (above), not vouched for now.
    for (const [pool, term] of terms) {
      if (leadership.termOf(pool) === term) archive.writer.markApplied(archiveLogOf(pool), Math.min(appliedAtDrain, (floor.get(pool) ?? Infinity) - 1));
    }
  }

  private snapshotDue(): boolean {
    const { config, store, clock } = this.deps;
    if (this.snapshotting) return false;
    // By time: every snapshotIntervalMs, or SNAPSHOT_TIME_SHARE's inverse times as long as the last snapshot
    // took, whichever is later. With a large state and a trickle of entries, a fixed minute would have the
    // leader spend much of each minute snapshotting (about 7 s for a million jobs, from the per-line costs
    // measured); this way snapshots by time take at most that share of it.
    const dueByTime = clock.now() - this.lastSnapshot.atMs >= Math.max(config.snapshotIntervalMs, this.lastSnapshot.tookMs / SNAPSHOT_TIME_SHARE);
    // Jobs let go since the last snapshot are taken again: a restart would load them back, and a snapshot
    // taken just before a large batch was let go would hold it until the log moved on.
    if (store.appliedSeq <= this.lastSnapshot.seq) return this.evictedSinceSnapshot > 0 && dueByTime;
    // By entries: every snapshotEveryEntries, or once the log since the last snapshot is as long as that
    // snapshot was, whichever is later. A snapshot costs in proportion to the state, so with a large state
    // (a long retention, no archive) a fixed count would have it snapshotting most of the time; this way a
    // snapshot costs at most about one line per entry applied, and a rebuild replays a tail no longer than
    // the snapshot it loads.
    const everyEntries = Math.max(config.snapshotEveryEntries, this.lastSnapshot.lines);
    return dueByTime || store.appliedSeq - this.lastSnapshot.seq >= everyEntries;
  }

  /** Captures the state now (nothing in flight), then encodes and stores it off the placement path; then compacts. */
  private async snapshot(): Promise<void> {
    // The wait for quiet may end in a rebuild (which starts by settling what is in flight): only a replica
    // that still leads captures, so a snapshot is never of a store being emptied and refilled.
    if (this.snapshotting || !this.snapshotDue() || !this.deps.leadership.leads(KEEPER_POOL)) return;
    this.snapshotting = true;
    const end = this.metrics.snapshotSeconds.startTimer();
    const { store, planner, config, clock } = this.deps;
    const state: StateSnapshot = { v: SNAPSHOT_VERSION, takenAtMs: clock.now(), takenBy: config.replicaId, ...store.capture(), deferrals: planner.serialize(), workMix: planner.serializeMix() };
    const captured = captureSnapshot(state);
    const evictedBefore = this.evictedSinceSnapshot;
    try {
      const data = await encodeSnapshot(captured);
      failpoint(FAILPOINTS.snapshotEncoded);
      await this.deps.snapshots().save(state.seq, data);
      failpoint(FAILPOINTS.snapshotStored);
      const { counts } = captured;
      this.lastSnapshot = { seq: state.seq, atMs: state.takenAtMs, lines: counts.jobs + counts.metered + counts.waiting + counts.deferrals + counts.lastSeqs, tookMs: clock.now() - state.takenAtMs };
      this.evictedSinceSnapshot -= evictedBefore;
      this.metrics.snapshots.inc({ result: 'stored' });
      this.metrics.snapshotBytes.set(data.byteLength);
      this.metrics.snapshotSeq.set(state.seq);
      this.metrics.snapshotJobs.set(state.jobs.length);
      this.deps.log.info({ seq: state.seq, jobs: state.jobs.length, bytes: data.byteLength }, 'state snapshot stored');
      await this.compact();
    } catch (err) {
      this.metrics.snapshots.inc({ result: 'failed' });
      this.deps.log.warn({ err: (err as Error).message }, 'state snapshot not stored; the next one will try again');
    } finally {
      end();
      this.snapshotting = false;
    }
  }

  /** Removes the log below what a fallback snapshot and, with an archive, every pool's archive cover. */
  private async compact(): Promise<void> {
    const positions = await this.deps.snapshots().positions();
    if (positions.length < 2) return;
    let bound = positions[1];
    const archive = this.deps.archive;
    if (archive) {
      const stored = await readWatermarks(archive.db);
      for (const pool of ['general', 'intelligent', 'super'] as const) bound = Math.min(bound, stored.get(archiveLogOf(pool)) ?? 0);
    }
    bound -= this.deps.config.compactionMarginEntries;
    // Deposed while the snapshot was stored: the new leader keeps the log from here.
    if (bound <= this.compacted || !this.deps.leadership.leads(KEEPER_POOL)) return;
    const purged = await this.deps.jobLog().compactBelow(bound);
    this.compacted = bound;
    this.metrics.compactedBelow.set(bound);
    this.deps.log.info({ below: bound, purged }, 'job log compacted');
    failpoint(FAILPOINTS.jobLogCompacted);
    // The audit chain's records leave the stream once the archive holds every one up to them.
    if (archive) await this.deps.audit().compactThrough(await archivedAuditPrefix(archive.db));
  }

  /** Lets finished jobs go from memory after their retention, once the archive holds everything that touched them. */
  private async evictRetained(): Promise<void> {
    this.lastEvictionMs = this.deps.clock.now();
    const { archive, store, planner, config } = this.deps;
    if (!archive) return;
    const stored = await readWatermarks(archive.db);
    const before = this.deps.clock.now() - config.jobRetentionMs;
    let evicted = 0;
    for (const job of [...store.table.jobs.values()]) {
      if (!TERMINAL_JOB_STATES.has(job.state) || (job.finishedAtMs ?? Infinity) > before) continue;
      const seq = store.lastSeqOf(job.id) ?? Infinity;
      if (seq > (stored.get(archiveLogOf(job.spec.pool)) ?? 0)) continue;
      if (store.evict(job.id)) {
        planner.forget(job.id);
        evicted++;
      }
    }
    if (evicted > 0) this.metrics.evicted.inc(evicted);
    this.evictedSinceSnapshot += evicted;
  }
}
