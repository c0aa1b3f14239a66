import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { systemClock, type Clock } from '../time';

/** What JetStream answered to a stored message. */
export interface StoredAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface Waiter {
  resolve(ack: StoredAck): void;
  reject(err: Error): void;
  deadlineMs: number;
}

/** What a publish may ask of the stream besides storing the message. */
export interface PublishOptions {
  /** De-duplicates: the stream stores one message per id within its duplicate window. */
  msgID?: string;
  /** Stores it only if the subject's last message is still this one (else JetStream refuses: "wrong last sequence"). */
  expectLastSubjectSequence?: number;
}

/** Every JetStream publish has to wait at most this long before it is failed by the sweep. */
const SWEEP_MS = 100;

/**
 * Publishes to JetStream streams with many acknowledgements in flight, for the hot path.
 *
 * A JetStream publish is a core NATS message with a reply subject; the stream answers with a PubAck.
 * The official client's `js.publish` does exactly that but allocates a timer, a race and an Error per
 * message, which showed as about a tenth of the scheduler's CPU under load. This publisher uses one
 * reply subscription for all acknowledgements, correlates them by token and fails the overdue ones from
 * a single sweep timer, armed only while acknowledgements are awaited (an idle agent must not wake up ten
 * times a second for nothing). Same wire protocol (`Nats-Msg-Id` for de-duplication), same answers.
 */
export class JetStreamPublisher {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly waiting = new Map<number, Waiter>();
  private sweep: NodeJS.Timeout | undefined;
  private next = 0;
  /** Messages to send at the end of this turn of the event loop. */
  private outbox: { subject: string; data: string | Uint8Array; options: PublishOptions; token: number }[] = [];
  private flushQueued = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 5_000,
    inboxPrefix?: string,
  ) {
    this.inbox = createInbox(inboxPrefix);
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => (err ? undefined : this.onReply(msg)) });
  }

  /**
   * Stores `data` on `subject`; resolves with the stream's acknowledgement, rejects when it refuses or
   * times out. Messages published in one turn of the event loop leave together in one socket write: every
   * write wakes the server, and on a busy machine each wake-up is a context switch.
   */
  publish(subject: string, data: string | Uint8Array, options: PublishOptions = {}): Promise<StoredAck> {
    const token = this.next++;
    return new Promise<StoredAck>((resolve, reject) => {
      this.waiting.set(token, { resolve, reject, deadlineMs: Date.now() + this.timeoutMs });
      if (this.sweep === undefined) {
        this.sweep = setInterval(() => this.expire(), SWEEP_MS);
        this.sweep.unref();
      }
      this.outbox.push({ subject, data, options, token });
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushQueued = false;
    const batch = this.outbox;
    this.outbox = [];
    for (const m of batch) {
      try {
        let h;
        const { msgID, expectLastSubjectSequence } = m.options;
        if (msgID !== undefined) {
          h = headers();
          h.set('Nats-Msg-Id', msgID);
        }
        if (expectLastSubjectSequence !== undefined) {
          h ??= headers();
          h.set('Nats-Expected-Last-Subject-Sequence', String(expectLastSubjectSequence));
        }
        this.nc.publish(m.subject, m.data, { reply: `${this.inbox}.${m.token}`, headers: h });
      } catch (err) {
        const waiter = this.waiting.get(m.token);
        this.waiting.delete(m.token);
        waiter?.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** Fails everything still waiting and stops listening. */
  close(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.sub.unsubscribe();
    for (const w of this.waiting.values()) w.reject(new Error('publisher closed'));
    this.waiting.clear();
  }

  private onReply(msg: Msg): void {
    const token = Number(msg.subject.slice(this.inbox.length + 1));
    const waiter = this.waiting.get(token);
    if (!waiter) return;
    this.waiting.delete(token);
    if (msg.data.length === 0) {
      // A status message: 503 means no stream listens on the subject.
      const code = msg.headers?.code ?? 0;
      waiter.reject(new Error(code === 503 ? 'no stream stores this subject (no responders)' : `unexpected status ${code}`));
      return;
    }
    try {
      const ack = msg.json<{ stream?: string; seq?: number; duplicate?: boolean; error?: { code: number; description: string } }>();
      if (ack.error) waiter.reject(new Error(`JetStream refused the message: ${ack.error.description} (${ack.error.code})`));
      else waiter.resolve({ stream: ack.stream ?? '', seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
    } catch (err) {
      waiter.reject(new Error(`unreadable JetStream acknowledgement: ${(err as Error).message}`));
    }
  }

  private expire(): void {
    if (this.waiting.size === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
      return;
    }
    const now = Date.now();
    // Waiters are in publish order and share one timeout, so the overdue ones come first.
    for (const [token, w] of this.waiting) {
      if (w.deadlineMs > now) break;
      this.waiting.delete(token);
      w.reject(new Error(`no acknowledgement from JetStream within ${this.timeoutMs} ms`));
    }
  }
}

/** How `publishUntilStored` tries again. */
export interface StoreRetry {
  /** Wait after the first failure, doubled after each further one up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** The clock of the waits (a test's manual one). */
  clock?: Clock;
  /** Told of each failure and of the wait before the next try. */
  onFailure?: (err: Error, retryMs: number) => void;
}

/**
 * Publishes to JetStream until the stream stores the message, trying again after each failure (a timeout
 * while a stream elects a leader, a lost connection) with backoff. `message` is asked before every try
 * (1, 2, …) for what to send, and returns undefined to give up (no longer wanted, shutting down). Resolves
 * true once stored, false when given up. No message id: callers send what a receiver takes twice harmlessly.
 */
export async function publishUntilStored(publisher: JetStreamPublisher, subject: string, message: (attempt: number) => string | undefined, retry: StoreRetry): Promise<boolean> {
  const clock = retry.clock ?? systemClock;
  for (let attempt = 1, delayMs = retry.firstDelayMs; ; attempt++, delayMs = Math.min(retry.maxDelayMs, delayMs * 2)) {
    const data = message(attempt);
    if (data === undefined) return false;
    try {
      await publisher.publish(subject, data);
      return true;
    } catch (err) {
      retry.onFailure?.(err as Error, delayMs);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, delayMs));
    }
  }
}
