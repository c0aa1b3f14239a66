import type { ConsumerMessages } from '@nats-io/jetstream';
import { ClusterState, PendingQueue } from '../src/core';
import type { JobEvent, Pool } from '../src/protocol';
import { TermFence, type JobLog, type LogEntry } from '../src/store/job-log';
import type { Logger } from '../src/telemetry/logger';
import type { SchedulerMetrics } from '../src/telemetry/metrics';
import { NotLeaderError, type LeadershipView } from './leadership';
import { UsageLedger } from './metering';
import { JobTable, type Effect } from './state/job-table';
import type { StateSnapshot } from './state/snapshot';
import { pacer } from '../src/time';

/** Jobs put back from a snapshot between two turns of the event loop (at most). */
const RESTORE_SLICE = 500;

/** Appends in flight above which scheduling cycles pause until JetStream catches up. */
export const MAX_IN_FLIGHT = 4_096;

/** What the job store asks of the rest of the scheduler. */
export interface JobStoreHooks {
  /** Carries out what applying a live entry asked for (work for agents, metering, metrics). */
  runEffects(effects: Effect[]): void;
  /** An append failed: memory and log may differ, so the state must be rebuilt. */
  appendFailed(reason: string): void;
  /** Appends in flight fell back under the limit: paused cycles may go on. */
  relieved(): void;
}

/** What the rest of the scheduler may read of the job store. */
export interface JobStateView {
  readonly cluster: ClusterState;
  readonly pending: PendingQueue;
  readonly table: JobTable;
  readonly usage: UsageLedger;
}

/**
 * Every job in memory, kept by the job log (QY_JOBS): the cluster's allocations, the pending queue, the job
 * table and the metered usage. These objects are made once and reset, never swapped, so any part may hold
 * them. Every decision is applied in memory at the moment it is appended, in append order, so the log
 * replays to the same state; a failed append means memory and log may differ, and the store asks for a
 * rebuild. Entries behind a newer term marker of their pool are fenced off (a deposed leader's late writes).
 */
export class JobStore implements JobStateView {
  readonly cluster = new ClusterState();
  readonly pending = new PendingQueue();
  readonly table = new JobTable(this.cluster, this.pending);
  /** Metered usage of every task, from the job log. */
  readonly usage = new UsageLedger();
  private readonly fence = new TermFence();
  private feed: ConsumerMessages | undefined;
  private inFlightCount = 0;
  /** The last log position taken into memory (replayed or followed). */
  private applied = 0;
  /** The last log position that touched each job in memory (own decisions once stored). */
  private readonly lastSeqs = new Map<string, number>();
  /** Jobs touched since the archiver last looked, with the position that touched them. */
  private touched = new Map<string, number>();
  /** Called once nothing of this replica's is in flight (a snapshot then holds no decision the log does not). */
  private settled: (() => void)[] = [];
  /** Raised by `hold()`: new decisions wait until what is in flight is stored (one append's round trip). */
  private barrier: { promise: Promise<void>; open: () => void } | undefined;

  constructor(
    private readonly jobLog: () => JobLog,
    private readonly leadership: LeadershipView,
    private readonly log: Logger,
    private readonly metrics: SchedulerMetrics,
    private readonly hooks: JobStoreHooks,
    private readonly preemptionGraceMs: number,
  ) {}

  /** Appends not yet acknowledged by JetStream. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** The last log position taken into memory. */
  get appliedSeq(): number {
    return this.applied;
  }

  /** The last log position that touched a job in memory. */
  lastSeqOf(jobId: string): number | undefined {
    return this.lastSeqs.get(jobId);
  }

  /** The jobs touched since the last call, with the position that last touched each (for the archiver). */
  drainTouched(): Map<string, number> {
    const out = this.touched;
    this.touched = new Map();
    return out;
  }

  /** How many times the store was reset: work that spans turns of the event loop sees a rebuild happened meanwhile. */
  generation = 0;

  /** Forgets everything before a replay; the same objects stay in place. */
  reset(): void {
    this.generation++;
    this.cluster.reset();
    this.pending.reset();
    this.table.reset();
    this.usage.reset();
    this.fence.reset();
    this.applied = 0;
    this.lastSeqs.clear();
    this.touched.clear();
  }

  /** Lets a job that has ended (and is archived) go from memory, with its usage. */
  evict(jobId: string): boolean {
    if (!this.table.evict(jobId)) return false;
    this.usage.evict(jobId);
    this.lastSeqs.delete(jobId);
    return true;
  }

  /** The state as a snapshot's parts, as of `appliedSeq`. Call only with nothing in flight (see StateKeeper). */
  capture(): Pick<StateSnapshot, 'seq' | 'terms' | 'jobs' | 'usage' | 'lastSeqs'> {
    return { seq: this.applied, terms: this.fence.serialize(), jobs: this.table.serialize(), usage: this.usage.serialize(), lastSeqs: [...this.lastSeqs] };
  }

  /** Starts from a snapshot (after reset, with the nodes registered); the log after its `seq` is replayed next. Returns jobs queued again. */
  async restore(snapshot: StateSnapshot): Promise<string[]> {
    this.fence.restore(snapshot.terms);
    // In slices, with turns for the event loop between them: a lease just won is renewed meanwhile.
    const pace = pacer();
    const requeued: string[] = [];
    for (let i = 0; i < snapshot.jobs.length; i += RESTORE_SLICE) {
      requeued.push(...this.table.restore(snapshot.jobs.slice(i, i + RESTORE_SLICE)));
      await pace();
    }
    this.usage.restore(snapshot.usage);
    for (const [jobId, seq] of snapshot.lastSeqs) this.lastSeqs.set(jobId, seq);
    for (const job of snapshot.jobs) this.touched.set(job.id, this.lastSeqs.get(job.id) ?? snapshot.seq);
    this.applied = snapshot.seq;
    return requeued;
  }

  /** Calls `fn` at once if nothing is in flight, else as soon as the last decision in flight is stored (or failed). */
  whenSettled(fn: () => void): void {
    if (this.inFlightCount === 0) fn();
    else this.settled.push(fn);
  }

  /**
   * Under steady load something is always in flight, and a `whenSettled` waiter could wait for ever. `hold()`
   * makes new decisions wait (see `gate` and `commitWhenOpen`) until the appends in flight are stored and the
   * waiters have run: a pause of one append's round trip, asked for only when quiet did not come by itself.
   */
  hold(): void {
    if (this.barrier || this.inFlightCount === 0 || this.settled.length === 0) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.barrier = { promise, open };
  }

  /** While held: resolves when new decisions may be made again. Undefined when they may be made now. */
  get gate(): Promise<void> | undefined {
    return this.barrier?.promise;
  }

  /** Commits a decision nobody waits on now, or once the store is no longer held. */
  commitWhenOpen(event: JobEvent): void {
    if (!this.barrier) {
      this.commit(event);
      return;
    }
    void this.barrier.promise.then(() => {
      try {
        this.commit(event);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, jobId: event.jobId, event: event.type }, 'decision dropped after a hold: no longer leading');
      }
    });
  }

  /** Waits (at most `maxMs`) for decisions in flight to land, so a replay holds them. */
  async settle(maxMs = 5_000): Promise<void> {
    for (let waited = 0; this.inFlightCount > 0 && waited < maxMs; waited += 20) await new Promise((r) => setTimeout(r, 20));
  }

  /** Replays the log into memory (effects dropped); returns how many entries and the last sequence read. */
  async replay(): Promise<{ entries: number; lastSeq: number }> {
    let entries = 0;
    const lastSeq = await this.jobLog().replay((entry) => {
      entries++;
      this.ingest(entry, false);
    }, this.applied);
    this.applied = Math.max(this.applied, lastSeq);
    return { entries, lastSeq };
  }

  /** Follows the log from after `lastSeq`, acting on what concerns the pools this replica leads. */
  async follow(lastSeq: number): Promise<void> {
    this.feed = await this.jobLog().follow(
      lastSeq,
      (entry) => this.ingest(entry, true),
      (body) => this.isOwnEvent(body),
    );
  }

  /**
   * Whether a job event read back from the log is one this replica wrote in its current term (only a pool's
   * leader writes with its term, and it validated the event before writing it).
   */
  isOwnEvent(body: Partial<JobEvent>): boolean {
    if (typeof body.jobId !== 'string' || typeof body.term !== 'number' || typeof body.type !== 'string') return false;
    const pool = body.type === 'submitted' ? (body as Partial<Extract<JobEvent, { type: 'submitted' }>>).spec?.pool : this.table.get(body.jobId)?.spec.pool;
    return pool !== undefined && this.leadership.termOf(pool) === body.term;
  }

  /** Stops following the log. */
  async closeFeed(): Promise<void> {
    await this.feed?.close().catch(() => undefined);
    this.feed = undefined;
  }

  /** The pool of the job an event is about (undefined for a job this replica does not know). */
  poolOfEvent(event: JobEvent): Pool | undefined {
    return event.type === 'submitted' ? event.spec.pool : this.table.get(event.jobId)?.spec.pool;
  }

  /** Whether this replica leads the pool of a job it knows. */
  leadsJob(jobId: string): boolean {
    const pool = this.table.get(jobId)?.spec.pool;
    return pool !== undefined && this.leadership.leads(pool);
  }

  /**
   * Applies a decision and appends it to the log; effects run once it is stored. Resolves when stored;
   * on failure the store asks for a rebuild and the promise rejects.
   */
  commit(event: JobEvent, msgID?: string): { effects: Effect[]; stored: Promise<void> } {
    const pool = this.poolOfEvent(event);
    const term = pool === undefined ? undefined : this.leadership.termOf(pool);
    if (pool === undefined || term === undefined) throw new NotLeaderError(pool, pool ? this.leadership.leaderOf(pool) : undefined);
    event.term = term;
    const effects = this.apply({ kind: 'event', seq: 0, event });
    this.inFlightCount++;
    const stored = this.jobLog()
      .append(event, msgID)
      .then(
        (ack) => {
          // Stored after this replica stopped leading: a newer leader may have fenced it off, so it did not happen.
          if (this.leadership.termOf(pool) !== term) throw new NotLeaderError(pool, this.leadership.leaderOf(pool));
          if (ack.duplicate) throw new Error(`job log dropped ${event.type} of ${event.jobId} as a duplicate`);
          this.touch(event.jobId, ack.seq);
          this.metrics.logAppends.inc({ result: 'ok' });
          this.hooks.runEffects(effects);
        },
        (err: unknown) => {
          throw err instanceof Error ? err : new Error(String(err));
        },
      );
    stored
      .catch((err: Error) => {
        if (err instanceof NotLeaderError) return;
        this.metrics.logAppends.inc({ result: 'failed' });
        this.log.error({ err, jobId: event.jobId, event: event.type }, 'append to the job log failed');
        this.hooks.appendFailed(`append failed: ${err.message}`);
      })
      .finally(() => {
        this.inFlightCount--;
        if (this.inFlightCount === MAX_IN_FLIGHT / 4) this.hooks.relieved();
        if (this.inFlightCount === 0 && this.settled.length > 0) {
          const settled = this.settled;
          this.settled = [];
          for (const fn of settled) fn();
        }
        if (this.inFlightCount === 0 && this.barrier) {
          this.barrier.open();
          this.barrier = undefined;
          this.hooks.relieved();
        }
      });
    return { effects, stored };
  }

  /**
   * Takes one entry of the job log into memory, behind the term fence. While following (`live`), the
   * decisions this replica logged itself are already applied, and only reports about the pools it leads
   * are acted on; other pools' decisions are their leaders' to act on.
   */
  private ingest(entry: LogEntry, live: boolean): void {
    if (live && entry.seq > this.applied + 1) {
      // Entries were compacted away before this replica read them: what it holds is incomplete.
      this.hooks.appendFailed(`missed job log entries ${this.applied + 1}..${entry.seq - 1} (compacted before they were read)`);
      return;
    }
    if (entry.seq > this.applied) this.applied = entry.seq;
    if (!this.fence.admits(entry, (e) => this.poolOfEvent(e))) return;
    if (entry.kind === 'event') {
      const pool = this.poolOfEvent(entry.event);
      if (!(live && pool !== undefined && this.leadership.termOf(pool) === entry.event.term)) this.apply(entry);
      this.touch(entry.event.jobId, entry.seq);
      return;
    }
    if (entry.kind !== 'status') return;
    const effects = this.apply(entry);
    this.touch(entry.status.jobId, entry.seq);
    if (!live || !this.leadsJob(entry.status.jobId)) return;
    this.leadership.confirm();
    if (this.leadsJob(entry.status.jobId)) this.hooks.runEffects(effects);
  }

  private touch(jobId: string, seq: number): void {
    if (!this.table.get(jobId)) return;
    if (seq > (this.lastSeqs.get(jobId) ?? 0)) this.lastSeqs.set(jobId, seq);
    this.touched.set(jobId, this.lastSeqs.get(jobId)!);
  }

  /** Applies one job-log entry to memory and returns what the live service should do about it. */
  private apply(entry: Exclude<LogEntry, { kind: 'term' }>): Effect[] {
    if (entry.kind === 'status') {
      const { status } = entry;
      const effects = this.table.applyStatus(status);
      if (!status.usage || !this.table.get(status.jobId)) return effects;
      const report = { ...status, usage: status.usage };
      this.usage.noteReport(report);
      return [...effects, { kind: 'meter', report }];
    }
    const e = entry.event;
    switch (e.type) {
      case 'submitted':
        return this.table.applySubmitted(e);
      case 'placed':
        try {
          return this.table.applyPlaced(e);
        } catch (err) {
          this.log.error({ err, jobId: e.jobId, attemptId: e.attemptId }, 'logged placement does not fit the cluster as registered; job stays pending');
          return [];
        }
      case 'requeued':
        return this.table.applyRequeued(e);
      case 'cancel-requested':
        return this.table.applyCancelRequested(e);
      case 'preempted':
        return this.table.applyPreempted(e, this.preemptionGraceMs);
      case 'metered':
        this.usage.record(e.usage);
        return [];
    }
  }
}
