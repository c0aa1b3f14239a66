import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { STREAMS, isStatusSubject, isTermSubject, jobEventSchema, leaderTermSchema, statusReportSchema, subjects, type JobEvent, type LeaderTerm, type Pool, type StatusReport } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { JetStreamPublisher, type StoredAck } from './js-publisher';
import { apiJetstream, isNotFound, retryTimeouts } from './nats';

/** One entry of the job log, validated: a scheduler event, an agent's status report, or a term marker. */
export type LogEntry =
  | { kind: 'event'; seq: number; event: JobEvent }
  | { kind: 'status'; seq: number; status: StatusReport }
  | { kind: 'term'; seq: number; marker: LeaderTerm };

/**
 * Drops a deposed leader's late writes while reading the log in order: after a pool's term marker,
 * scheduler events of that pool's jobs with an older term are not part of history. Status reports are the
 * agents' and always count. The reader says which pool an event's job is in (only it knows every job).
 */
export class TermFence {
  private readonly terms = new Map<Pool, number>();

  /** Forgets every marker (a replay starts from the beginning). */
  reset(): void {
    this.terms.clear();
  }

  /** The terms seen so far, for a snapshot. */
  serialize(): Partial<Record<Pool, number>> {
    return Object.fromEntries(this.terms) as Partial<Record<Pool, number>>;
  }

  /** Starts from a snapshot's terms. */
  restore(terms: Partial<Record<Pool, number>>): void {
    this.terms.clear();
    for (const [pool, term] of Object.entries(terms)) this.terms.set(pool as Pool, term);
  }

  /** The highest term marked for the pool so far (0 before any). */
  termOf(pool: Pool): number {
    return this.terms.get(pool) ?? 0;
  }

  /** Whether the entry belongs to history; a marker raises its pool's fence and is not itself history. */
  admits(entry: LogEntry, poolOf: (event: JobEvent) => Pool | undefined): boolean {
    if (entry.kind === 'term') {
      this.terms.set(entry.marker.pool, Math.max(this.termOf(entry.marker.pool), entry.marker.term));
      return false;
    }
    if (entry.kind === 'status') return true;
    const pool = poolOf(entry.event);
    return pool === undefined || (entry.event.term ?? 0) >= this.termOf(pool);
  }
}

/**
 * The durable job log (stream QY_JOBS): the one place a job's history lives. The scheduler appends its
 * decisions here and agents append their status reports; replaying it from the start rebuilds the
 * scheduler's state. Appends are not awaited one by one: many are in flight on one connection, in order.
 */
export class JobLog {
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly log: Logger,
    private readonly publisher: JetStreamPublisher = new JetStreamPublisher(nc),
  ) {
    this.js = apiJetstream(nc);
  }

  /**
   * Appends a scheduler event; resolves once JetStream has stored it. Only pass a `msgID` where a retry
   * could store a second copy that replay would not tolerate: JetStream keeps every id for its duplicate
   * window, which costs the server time and memory on each message.
   */
  append(event: JobEvent, msgID?: string): Promise<StoredAck> {
    return this.publisher.publish(subjects.jobEvent(event.jobId, event.type), JSON.stringify(event), { msgID });
  }

  /**
   * Marks the start of a pool's leadership term; resolves with the marker's sequence number once stored.
   * Everything stored before it is in the new leader's state; what a deposed leader manages to write after
   * it is fenced off (TermFence).
   */
  async appendTerm(marker: LeaderTerm): Promise<number> {
    return (await this.publisher.publish(subjects.term(marker.pool), JSON.stringify(marker))).seq;
  }

  /**
   * Removes job events and status reports stored before `seq` (term markers stay: a new leader's term is
   * read from them). Everything before `seq` must be in a snapshot and, with an archive, archived.
   */
  async compactBelow(seq: number): Promise<number> {
    const jsm = await this.js.jetstreamManager();
    let purged = 0;
    for (const filter of [subjects.allJobEvents, subjects.allStatus]) purged += (await jsm.streams.purge(STREAMS.jobs, { filter, seq })).purged;
    return purged;
  }

  /** The highest term marked in the log for a pool (0 if none): a new leader's term must exceed it. */
  async lastTerm(pool: Pool): Promise<number> {
    const jsm = await this.js.jetstreamManager();
    try {
      const msg = await jsm.streams.getMessage(STREAMS.jobs, { last_by_subj: subjects.term(pool) });
      const parsed = msg ? leaderTermSchema.safeParse(msg.json()) : undefined;
      return parsed?.success ? parsed.data.term : 0;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  /**
   * Reads the log in order, after `afterSeq` (a snapshot's) up to its end now, and hands every valid entry
   * (term markers included) to `apply`. Returns the sequence number of the last entry read: following from
   * there continues without gap or overlap.
   */
  async replay(apply: (entry: LogEntry) => void, afterSeq = 0): Promise<number> {
    const jsm = await this.js.jetstreamManager();
    const lastSeq = (await retryTimeouts(() => jsm.streams.info(STREAMS.jobs), `the job log's stream info`)).state.last_seq;
    if (lastSeq <= afterSeq) return Math.max(lastSeq, afterSeq);
    const from = afterSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 } : { deliver_policy: DeliverPolicy.All };
    const messages = await retryTimeouts(async () => (await this.js.consumers.get(STREAMS.jobs, from)).consume({ max_messages: 1000 }), 'a consumer to replay the job log');
    try {
      for await (const msg of messages) {
        const entry = this.parse(msg);
        if (entry) apply(entry);
        if (msg.seq >= lastSeq) break;
      }
    } finally {
      await messages.close();
    }
    return lastSeq;
  }

  /**
   * Follows every entry written after `afterSeq`, in order, until stopped. `ownEvent` says whether a job
   * event (parsed JSON) is one this replica wrote itself in its current term: it was validated before it was
   * written, so it is passed on without being validated again (on the live path, the scheduler reads back
   * every decision it makes; validating each one again was about a seventh of its CPU).
   */
  async follow(afterSeq: number, onEntry: (entry: LogEntry) => void, ownEvent?: (body: Partial<JobEvent>) => boolean): Promise<ConsumerMessages> {
    const messages = await retryTimeouts(async () => (await this.js.consumers.get(STREAMS.jobs, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 })).consume({ max_messages: 1000 }), 'a consumer to follow the job log');
    void (async () => {
      for await (const msg of messages) {
        const entry = this.parse(msg, ownEvent);
        if (entry) onEntry(entry);
      }
    })().catch((err) => this.log.error({ err }, 'job log consumer stopped'));
    return messages;
  }

  private parse(msg: JsMsg, ownEvent?: (body: Partial<JobEvent>) => boolean): LogEntry | undefined {
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      this.log.warn({ subject: msg.subject, seq: msg.seq }, 'job log entry is not JSON; skipped');
      return undefined;
    }
    if (isTermSubject(msg.subject)) {
      const parsed = leaderTermSchema.safeParse(body);
      if (parsed.success) return { kind: 'term', seq: msg.seq, marker: parsed.data };
    } else if (isStatusSubject(msg.subject)) {
      const parsed = statusReportSchema.safeParse(body);
      if (parsed.success && msg.subject === subjects.status(parsed.data.nodeId)) return { kind: 'status', seq: msg.seq, status: parsed.data };
    } else {
      if (ownEvent && typeof body === 'object' && body !== null && ownEvent(body as Partial<JobEvent>)) return { kind: 'event', seq: msg.seq, event: body as JobEvent };
      const parsed = jobEventSchema.safeParse(body);
      if (parsed.success) return { kind: 'event', seq: msg.seq, event: parsed.data };
    }
    this.log.warn({ subject: msg.subject, seq: msg.seq }, 'invalid job log entry; skipped');
    return undefined;
  }
}
