import { readFileSync } from 'node:fs';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { carbonReadingSchema, electricityMapsLatestSchema, nationalGridIntensitySchema, type NationalGridHalfHour, type NationalGridIntensity } from '../protocol';
import type { Logger } from '../telemetry/logger';
import type { Clock, Timer } from '../time';

/** The reading in force: its value, when it holds, and where it came from. */
export interface LiveReading {
  gPerKwh: number;
  atMs: number;
  via: 'http' | 'nats';
}

export interface LiveCarbonOptions {
  /** Polled for a reading (any shape {@link readingOf} takes). */
  url?: string;
  /** Sent with every poll (a provider's token: Electricity Maps' `auth-token`, an `authorization`). */
  headers?: Readonly<Record<string, string>>;
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

/** What a feed may send, for the messages that refuse something else. */
export const READING_SHAPES = 'expected {"gPerKwh": number, "atMs"?: number}, National Grid\'s {"data": [{"from", "intensity": {"forecast", "actual"}}]} or Electricity Maps\' {"carbonIntensity", "datetime"}';

/**
 * A carbon reading from a feed's JSON, or undefined when it is none: this project's own `{"gPerKwh", "atMs"?}`
 * (a missing `atMs` is `nowMs`, the time of receipt), or a provider's answer taken as it is, so QY_CARBON_URL can
 * name the provider itself: National Grid ESO's Carbon Intensity API (the half-hour in force at `nowMs`, its
 * actual value once known, else its forecast; the reading holds from the half-hour's start) or Electricity
 * Maps' latest intensity (holding from its `datetime`). Values are held to the same range as the own shape's.
 */
export function readingOf(body: unknown, nowMs: number): { gPerKwh: number; atMs: number } | undefined {
  const own = carbonReadingSchema.safeParse(body);
  if (own.success) return { gPerKwh: own.data.gPerKwh, atMs: own.data.atMs ?? nowMs };
  const checked = (gPerKwh: number | null | undefined, atMs: number) => {
    const reading = carbonReadingSchema.safeParse({ gPerKwh, atMs });
    return reading.success ? { gPerKwh: reading.data.gPerKwh, atMs: reading.data.atMs! } : undefined;
  };
  const em = electricityMapsLatestSchema.safeParse(body);
  if (em.success) {
    const atMs = Date.parse(em.data.datetime);
    return Number.isFinite(atMs) ? checked(em.data.carbonIntensity, atMs) : undefined;
  }
  const ng = nationalGridIntensitySchema.safeParse(body);
  const half = ng.success ? halfHourAt(ng.data, nowMs) : undefined;
  return half && checked(half.value, half.atMs);
}

/** National Grid's half-hour in force at `nowMs` (the latest begun that has a value), or the earliest if none has begun. */
function halfHourAt({ data }: NationalGridIntensity, nowMs: number): { atMs: number; value: number } | undefined {
  const halfHours: NationalGridHalfHour[] = !Array.isArray(data) ? data.data : 'data' in data[0] ? data[0].data : (data as NationalGridHalfHour[]);
  let begun: { atMs: number; value: number } | undefined;
  let earliest: { atMs: number; value: number } | undefined;
  for (const { from, intensity } of halfHours) {
    const atMs = Date.parse(from);
    const value = intensity.actual ?? intensity.forecast;
    if (!Number.isFinite(atMs) || value === null || value === undefined) continue;
    if (atMs <= nowMs && (!begun || atMs > begun.atMs)) begun = { atMs, value };
    if (!earliest || atMs < earliest.atMs) earliest = { atMs, value };
  }
  return begun ?? earliest;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Request headers from a file, one `Name: value` a line as `curl -H @file` reads them (blank lines and lines
 * starting with `#` skipped): a provider's token kept out of the environment and the process list, e.g.
 * `auth-token: …` for Electricity Maps. Throws naming the line that is not a header.
 */
export function parseHeaderLines(text: string, name: string): Record<string, string> {
  const headers: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const colon = line.indexOf(':');
    const key = line.slice(0, Math.max(colon, 0)).trim();
    const value = line.slice(colon + 1).trim();
    if (colon <= 0 || !HEADER_NAME.test(key) || /[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new Error(`${name}:${i + 1}: expected a header "Name: value"`);
    headers[key.toLowerCase()] = value;
  });
  if (Object.keys(headers).length === 0) throw new Error(`${name}: no header in it (one "Name: value" a line)`);
  return headers;
}

/** {@link parseHeaderLines} of a file. */
export function loadHeaderFile(path: string): Record<string, string> {
  return parseHeaderLines(readFileSync(path, 'utf8'), path);
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
          if (!this.accept(body, 'nats')) this.options.log.warn({ subject: msg.subject }, `carbon reading refused: ${READING_SHAPES}`);
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

  /** Takes a reading (checked, see {@link readingOf}); false if it is not one. A reading older than the one in force is ignored. */
  accept(body: unknown, via: LiveReading['via']): boolean {
    const reading = readingOf(body, this.options.clock.now());
    if (!reading) return false;
    if (!this.latest || reading.atMs >= this.latest.atMs) this.latest = { ...reading, via };
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
      const response = await fetch(url!, { signal: AbortSignal.timeout(Math.min(this.options.timeoutMs ?? 10_000, pollMs)), headers: { accept: 'application/json', ...this.options.headers } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      if (!this.accept(await response.json(), 'http')) throw new Error(`not a carbon reading: ${READING_SHAPES}`);
      this.failures = 0;
    } catch (err) {
      next = Math.min(pollMs, FIRST_RETRY_MS * 2 ** this.failures++);
      log.warn({ url, err: (err as Error).message, retryInMs: next }, 'carbon feed poll failed');
    }
    if (!this.stopped) this.timer = clock.setTimeout(() => void this.poll(), next);
  }
}
