import { DeliverPolicy, jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { STREAMS, jobEventSchema, leaderTermSchema, statusReportSchema, subjects, type JobEvent, type LeaderTerm, type StatusReport } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { JetStreamPublisher, type StoredAck } from './js-publisher';

/** One entry of the job log, validated: a scheduler event or an agent's status report. */
export type LogEntry = { kind: 'event'; seq: number; event: JobEvent } | { kind: 'status'; seq: number; status: StatusReport };

/**
 * Drops a deposed leader's late writes while reading the log in order: after a term marker, scheduler
 * events of an older term are not part of history. Status reports are the agents' and always count.
 */
export class TermFence {
  constructor(public term = 0) {}

  /** Whether the entry belongs to history; a marker raises the fence and is not itself an entry. */
  admits(entry: LogEntry | { kind: 'term'; marker: LeaderTerm }): entry is LogEntry {
    if (entry.kind === 'term') {
      this.term = Math.max(this.term, entry.marker.term);
      return false;
    }
    return entry.kind === 'status' || (entry.event.term ?? 0) >= this.term;
  }
}

type RawEntry = LogEntry | { kind: 'term'; seq: number; marker: LeaderTerm };

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
    this.js = jetstream(nc);
  }

  /**
   * Appends a scheduler event; resolves once JetStream has stored it. Only pass a `msgID` where a retry
   * could store a second copy that replay would not tolerate: JetStream keeps every id for its duplicate
   * window, which costs the server time and memory on each message.
   */
  append(event: JobEvent, msgID?: string): Promise<StoredAck> {
    return this.publisher.publish(subjects.jobEvent(event.jobId, event.type), JSON.stringify(event), msgID);
  }

  /**
   * Marks the start of a leadership term; resolves with the marker's sequence number once stored. The
   * new leader replays up to it: what a deposed leader manages to write after it is fenced off.
   */
  async appendTerm(marker: LeaderTerm): Promise<number> {
    return (await this.publisher.publish(subjects.term, JSON.stringify(marker))).seq;
  }

  /** The highest term marked in the log so far (0 if none): a new leader's term must exceed it. */
  async lastTerm(): Promise<number> {
    const jsm = await this.js.jetstreamManager();
    try {
      const msg = await jsm.streams.getMessage(STREAMS.jobs, { last_by_subj: subjects.term });
      const parsed = msg ? leaderTermSchema.safeParse(msg.json()) : undefined;
      return parsed?.success ? parsed.data.term : 0;
    } catch (err) {
      if (/no message found|not found/i.test((err as Error).message)) return 0;
      throw err;
    }
  }

  /**
   * Reads the log in order, up to `untilSeq` (default: its end now), and hands every entry of history to
   * `apply`. Returns the sequence number of the last entry read and the fence reached; following from
   * there continues without gap or overlap.
   */
  async replay(apply: (entry: LogEntry) => void, untilSeq?: number): Promise<{ lastSeq: number; fence: TermFence }> {
    const fence = new TermFence();
    const jsm = await this.js.jetstreamManager();
    const lastSeq = untilSeq ?? (await jsm.streams.info(STREAMS.jobs)).state.last_seq;
    if (lastSeq === 0) return { lastSeq, fence };
    const consumer = await this.js.consumers.get(STREAMS.jobs, { deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: 1000 });
    try {
      for await (const msg of messages) {
        const entry = this.parse(msg);
        if (entry && fence.admits(entry)) apply(entry);
        if (msg.seq >= lastSeq) break;
      }
    } finally {
      await messages.close();
    }
    return { lastSeq, fence };
  }

  /** Follows agents' status reports written after `afterSeq`, in order, until stopped (the leader's feed). */
  followStatus(afterSeq: number, onStatus: (entry: Extract<LogEntry, { kind: 'status' }>) => void): Promise<ConsumerMessages> {
    return this.follow(afterSeq, subjects.allStatus, new TermFence(), (entry) => {
      if (entry.kind === 'status') onStatus(entry);
    });
  }

  /** Follows everything written after `afterSeq` behind the fence, in order, until stopped (a standby's feed). */
  followAll(afterSeq: number, fence: TermFence, onEntry: (entry: LogEntry) => void): Promise<ConsumerMessages> {
    return this.follow(afterSeq, undefined, fence, onEntry);
  }

  /** One filter subject at most: nats-server 2.9 (Debian's) has no filter_subjects. */
  private async follow(afterSeq: number, filter: string | undefined, fence: TermFence, onEntry: (entry: LogEntry) => void): Promise<ConsumerMessages> {
    const consumer = await this.js.consumers.get(STREAMS.jobs, {
      ...(filter ? { filter_subjects: filter } : {}),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: afterSeq + 1,
    });
    const messages = await consumer.consume({ max_messages: 1000 });
    void (async () => {
      for await (const msg of messages) {
        const entry = this.parse(msg);
        if (entry && fence.admits(entry)) onEntry(entry);
      }
    })().catch((err) => this.log.error({ err }, 'job log consumer stopped'));
    return messages;
  }

  private parse(msg: JsMsg): RawEntry | undefined {
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      this.log.warn({ subject: msg.subject, seq: msg.seq }, 'job log entry is not JSON; skipped');
      return undefined;
    }
    if (msg.subject === subjects.term) {
      const parsed = leaderTermSchema.safeParse(body);
      if (parsed.success) return { kind: 'term', seq: msg.seq, marker: parsed.data };
    } else if (msg.subject.startsWith('qy.status.')) {
      const parsed = statusReportSchema.safeParse(body);
      if (parsed.success && msg.subject === subjects.status(parsed.data.nodeId)) return { kind: 'status', seq: msg.seq, status: parsed.data };
    } else {
      const parsed = jobEventSchema.safeParse(body);
      if (parsed.success) return { kind: 'event', seq: msg.seq, event: parsed.data };
    }
    this.log.warn({ subject: msg.subject, seq: msg.seq }, 'invalid job log entry; skipped');
    return undefined;
  }
}
