import { readFileSync } from 'node:fs';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { MAX_G_PER_KWH, carbonForecastSchema, carbonReadingSchema, electricityMapsForecastSchema, electricityMapsLatestSchema, nationalGridIntensitySchema, type NationalGridHalfHour, type NationalGridIntensity } from '../protocol';
import type { Logger } from '../telemetry/logger';
import type { Clock, Timer } from '../time';
import { lastIndexAtOrBefore, type Point } from './series';

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
const READING_SHAPES = 'expected {"gPerKwh": number, "atMs"?: number}, National Grid\'s {"data": [{"from", "intensity": {"forecast", "actual"}}]} or Electricity Maps\' {"carbonIntensity", "datetime"}';

/**
 * A carbon reading from a feed's JSON, or undefined when it is none: this project's own `{"gPerKwh", "atMs"?}`
 * (a missing `atMs` is `nowMs`, the time of receipt), or a provider's answer taken as it is, so QY_CARBON_URL can
 * name the provider itself: National Grid ESO's Carbon Intensity API (the half-hour in force at `nowMs`, or the
 * earliest when none has begun; its actual value once known, else its forecast; the reading holds from the
 * half-hour's start) or Electricity Maps' latest intensity (holding from its `datetime`). A provider's answer
 * is held to what {@link checkedPoints} holds a forecast to.
 */
export function readingOf(body: unknown, nowMs: number): { gPerKwh: number; atMs: number } | undefined {
  const own = carbonReadingSchema.safeParse(body);
  if (own.success) return { gPerKwh: own.data.gPerKwh, atMs: own.data.atMs ?? nowMs };
  const em = electricityMapsLatestSchema.safeParse(body);
  const points = em.success ? checkedPoints([{ atMs: Date.parse(em.data.datetime), value: em.data.carbonIntensity }]) : nationalGridOf(body);
  if (!points) return undefined;
  const inForce = points[Math.max(0, lastIndexAtOrBefore(points, nowMs))];
  return { gPerKwh: inForce.value, atMs: inForce.atMs };
}

/** What a forecast feed may send, for the messages that refuse something else. */
const FORECAST_SHAPES = 'expected {"forecast": [{"atMs", "gPerKwh"}]}, National Grid\'s {"data": [{"from", "intensity": {"forecast"}}]} or Electricity Maps\' {"forecast": [{"carbonIntensity", "datetime"}]}';

/**
 * A published forecast from a feed's JSON, as points in time order, or undefined when it is none: this
 * project's own `{"forecast": [{"atMs", "gPerKwh"}]}`, National Grid ESO's half-hours (e.g.
 * `…/intensity/{now}/fw48h`) or Electricity Maps' forecast, held to {@link checkedPoints}.
 */
export function forecastOf(body: unknown): Point[] | undefined {
  const own = carbonForecastSchema.safeParse(body);
  if (own.success) return checkedPoints(own.data.forecast.map((p) => ({ atMs: p.atMs, value: p.gPerKwh })));
  const em = electricityMapsForecastSchema.safeParse(body);
  if (em.success) return checkedPoints(em.data.forecast.map((p) => ({ atMs: Date.parse(p.datetime), value: p.carbonIntensity })));
  return nationalGridOf(body);
}

/** National Grid's answer as checked points, for a reading and a forecast alike; undefined when it is not one. */
function nationalGridOf(body: unknown): Point[] | undefined {
  const ng = nationalGridIntensitySchema.safeParse(body);
  return ng.success ? checkedPoints(nationalGridPoints(ng.data)) : undefined;
}

/**
 * Points taken from a provider, in time order, or undefined when there are none or any has a time that is not
 * one or a value outside 0..MAX_G_PER_KWH: a provider's answer with one bad point is not trusted for the rest.
 */
function checkedPoints(points: Point[]): Point[] | undefined {
  if (points.length === 0 || points.some((p) => !(p.atMs >= 0) || !(p.value >= 0 && p.value <= MAX_G_PER_KWH))) return undefined;
  return points.sort((a, b) => a.atMs - b.atMs);
}

/** National Grid's half-hours as points: the actual value once known, else the forecast (half-hours with neither left out). */
function nationalGridPoints({ data }: NationalGridIntensity): Point[] {
  const halfHours = !Array.isArray(data) ? data.data : 'data' in data[0] ? data[0].data : (data as NationalGridHalfHour[]);
  return halfHours.flatMap(({ from, intensity }) => {
    const value = intensity.actual ?? intensity.forecast;
    return value === null || value === undefined ? [] : [{ atMs: Date.parse(from), value }];
  });
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

interface JsonPollerOptions {
  /** The URL of each poll (a template filled in at the time of the poll). */
  url: () => string;
  headers?: Readonly<Record<string, string>>;
  pollMs: number;
  /** How long one poll may take. Default 10 s, at most `pollMs`. */
  timeoutMs?: number;
  clock: Clock;
  log: Logger;
  /** What is polled, for the log. */
  what: string;
  /** Takes a body: true, or why it is refused (the poll then counts as failed). */
  accept: (body: unknown) => true | string;
}

/** Polls a URL for JSON every `pollMs`; a failed poll (or a body refused) is retried after 1 s, 2 s, 4 s… up to `pollMs`. */
class JsonPoller {
  private failures = 0;
  private timer: Timer | undefined;
  private stopped = false;

  constructor(private readonly options: JsonPollerOptions) {}

  start(): void {
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private async poll(): Promise<void> {
    const { pollMs, clock, log, headers } = this.options;
    const url = this.options.url();
    let next = pollMs;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.min(this.options.timeoutMs ?? 10_000, pollMs)), headers: { accept: 'application/json', ...headers } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const verdict = this.options.accept(await response.json());
      if (verdict !== true) throw new Error(verdict);
      this.failures = 0;
    } catch (err) {
      next = Math.min(pollMs, FIRST_RETRY_MS * 2 ** this.failures++);
      log.warn({ url, err: (err as Error).message, retryInMs: next }, `${this.options.what} poll failed`);
    }
    if (!this.stopped) this.timer = clock.setTimeout(() => void this.poll(), next);
  }
}

/**
 * Grid carbon intensity from a live source — an HTTP URL polled with backoff, or a NATS subject an operator's
 * feed publishes to, or both — with its age. A reading older than `staleMs` is not given out, so the caller
 * falls back to what it would use without a feed; a reading is never trusted beyond that.
 */
export class LiveCarbon {
  private latest: LiveReading | undefined;
  private sub: Subscription | undefined;
  private readonly poller: JsonPoller | undefined;

  constructor(private readonly options: LiveCarbonOptions) {
    const { url } = options;
    this.poller = url ? new JsonPoller({ ...options, url: () => url, what: 'carbon feed', accept: (body) => this.accept(body, 'http') || `not a carbon reading: ${READING_SHAPES}` }) : undefined;
  }

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
    this.poller?.start();
  }

  stop(): void {
    this.poller?.stop();
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

}

/** `{now}` in a forecast URL: the time of the poll to the minute, as National Grid's `/intensity/{from}/fw48h` takes it. */
export function fillForecastUrl(template: string, nowMs: number): string {
  return template.replaceAll('{now}', new Date(nowMs).toISOString().slice(0, 16) + 'Z');
}

export interface PublishedForecastOptions {
  /** Polled for a forecast (any shape {@link forecastOf} takes); `{now}` is the time of the poll. */
  url: string;
  headers?: Readonly<Record<string, string>>;
  pollMs: number;
  clock: Clock;
  log: Logger;
  timeoutMs?: number;
}

/**
 * A forecast of the grid's carbon intensity that its operator or a data provider publishes, polled with
 * backoff: the latest one received, from when it was received. The forecaster takes it as one more member of
 * its blend, weighed by its own measured error as the others are (see `publishedForecaster`).
 */
export class PublishedForecast {
  private latest: { receivedAtMs: number; points: Point[] } | undefined;
  private readonly poller: JsonPoller;

  constructor(private readonly options: PublishedForecastOptions) {
    const { url, clock } = options;
    this.poller = new JsonPoller({ ...options, url: () => fillForecastUrl(url, clock.now()), what: 'carbon forecast', accept: (body) => this.accept(body) || `not a carbon forecast: ${FORECAST_SHAPES}` });
  }

  start(): void {
    this.poller.start();
  }

  stop(): void {
    this.poller.stop();
  }

  /** Takes a forecast (checked, see {@link forecastOf}) as of now; false if it is not one. */
  accept(body: unknown): boolean {
    const points = forecastOf(body);
    if (!points) return false;
    this.latest = { receivedAtMs: this.options.clock.now(), points };
    return true;
  }

  /** The latest forecast received by `nowMs` (none for a time before it came: a forecast never looks back). */
  at(nowMs: number): readonly Point[] | undefined {
    return this.latest && this.latest.receivedAtMs <= nowMs ? this.latest.points : undefined;
  }

  /** How far past `nowMs` the latest forecast reaches (0 when it has run out or none came). */
  aheadMs(nowMs: number): number {
    const points = this.at(nowMs);
    return points ? Math.max(0, points[points.length - 1].atMs - nowMs) : 0;
  }
}
