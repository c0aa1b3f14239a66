import { DeliverPolicy, jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { STREAMS, jobEventSchema, statusReportSchema, subjects, type JobEvent, type StatusReport } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { JetStreamPublisher, type StoredAck } from './js-publisher';

/** One entry of the job log, validated: a scheduler event or an agent's status report. */
export type LogEntry = { kind: 'event'; seq: number; event: JobEvent } | { kind: 'status'; seq: number; status: StatusReport };

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
   * Reads the whole log in order and hands every valid entry to `apply`. Returns the sequence number of
   * the last entry read; following from there continues without gap or overlap.
   */
  async replay(apply: (entry: LogEntry) => void): Promise<number> {
    const jsm = await this.js.jetstreamManager();
    const lastSeq = (await jsm.streams.info(STREAMS.jobs)).state.last_seq;
    if (lastSeq === 0) return 0;
    const consumer = await this.js.consumers.get(STREAMS.jobs, { deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: 1000 });
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

  /** Follows agents' status reports written after `afterSeq`, in order, until stopped. */
  async followStatus(afterSeq: number, onStatus: (entry: Extract<LogEntry, { kind: 'status' }>) => void): Promise<ConsumerMessages> {
    const consumer = await this.js.consumers.get(STREAMS.jobs, {
      filter_subjects: subjects.allStatus,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: afterSeq + 1,
    });
    const messages = await consumer.consume({ max_messages: 1000 });
    void (async () => {
      for await (const msg of messages) {
        const entry = this.parse(msg);
        if (entry?.kind === 'status') onStatus(entry);
      }
    })().catch((err) => this.log.error({ err }, 'status consumer stopped'));
    return messages;
  }

  private parse(msg: JsMsg): LogEntry | undefined {
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      this.log.warn({ subject: msg.subject, seq: msg.seq }, 'job log entry is not JSON; skipped');
      return undefined;
    }
    if (msg.subject.startsWith('qy.status.')) {
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
