import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { carbonReadingSchema } from '../protocol';
import type { Logger } from '../telemetry/logger';
import type { Clock, Timer } from '../time';

/** The reading in force: its value, when it holds, and where it came from. */
export interface LiveReading {
  gPerKwh: number;
  atMs: number;
  via: 'http' | 'nats';
}

export interface LiveCarbonOptions {
  /** Polled for a reading (JSON `{"gPerKwh","atMs"?}`). */
  url?: string;
  /** Subscribed to for readings an operator's feed publishes. */
  subject?: string;
  pollMs: number;
  /** A reading older than this is stale: `fresh()` no longer gives it. */
  staleMs: number;
  clock: Clock;
  log: Logger;
  /** How long one poll may take. Default 10 s, at most `pollMs`. */
  timeoutMs?: number;
}

/** The first retry after a failed poll; each further failure doubles it, up to the poll interval. */
const FIRST_RETRY_MS = 1_000;

/**
 * Grid carbon intensity from a live source — an HTTP URL polled with backoff, or a NATS subject an operator's
 * feed publishes to, or both — with its age. A reading older than `staleMs` is not given out, so the caller
 * falls back to what it would use without a feed; a reading is never trusted beyond that.
 */
export class LiveCarbon {
  private latest: LiveReading | undefined;
  private failures = 0;
  private timer: Timer | undefined;
  private sub: Subscription | undefined;
  private stopped = false;

  constructor(private readonly options: LiveCarbonOptions) {}

  /** Whether any live source is configured. */
  get configured(): boolean {
    return this.options.url !== undefined || this.options.subject !== undefined;
  }

  /** Starts polling and listening (the subject needs the connection). */
  start(nc?: NatsConnection): void {
    if (this.options.subject && nc) {
      this.sub = nc.subscribe(this.options.subject, {
        callback: (err, msg) => {
          if (err) return;
          let body: unknown;
          try {
            body = msg.json();
          } catch {
            body = undefined;
          }
          if (!this.accept(body, 'nats')) this.options.log.warn({ subject: msg.subject }, 'carbon reading refused: expected {"gPerKwh": number, "atMs"?: number}');
        },
      });
    }
    if (this.options.url) void this.poll();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.sub?.unsubscribe();
  }

  /** Takes a reading (checked); false if it is not one. A reading older than the one in force is ignored. */
  accept(body: unknown, via: LiveReading['via']): boolean {
    const parsed = carbonReadingSchema.safeParse(body);
    if (!parsed.success) return false;
    const atMs = parsed.data.atMs ?? this.options.clock.now();
    if (!this.latest || atMs >= this.latest.atMs) this.latest = { gPerKwh: parsed.data.gPerKwh, atMs, via };
    return true;
  }

  /** The reading in force at `nowMs`, unless it is stale (or there is none yet). */
  fresh(nowMs: number): LiveReading | undefined {
    return this.latest && nowMs - this.latest.atMs <= this.options.staleMs ? this.latest : undefined;
  }

  /** How old the last reading is at `nowMs` (undefined before the first). */
  ageMs(nowMs: number): number | undefined {
    return this.latest && Math.max(0, nowMs - this.latest.atMs);
  }

  private async poll(): Promise<void> {
    const { url, pollMs, clock, log } = this.options;
    let next = pollMs;
    try {
      const response = await fetch(url!, { signal: AbortSignal.timeout(Math.min(this.options.timeoutMs ?? 10_000, pollMs)), headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      if (!this.accept(await response.json(), 'http')) throw new Error('not a carbon reading: expected {"gPerKwh": number, "atMs"?: number}');
      this.failures = 0;
    } catch (err) {
      next = Math.min(pollMs, FIRST_RETRY_MS * 2 ** this.failures++);
      log.warn({ url, err: (err as Error).message, retryInMs: next }, 'carbon feed poll failed');
    }
    if (!this.stopped) this.timer = clock.setTimeout(() => void this.poll(), next);
  }
}
