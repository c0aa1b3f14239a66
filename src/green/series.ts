import { parseTable, readTable, type Table } from '../files';

/** One value of a signal, in force from `atMs` until the next point. */
export interface Point {
  atMs: number;
  value: number;
}

/** `share`: the green share of electricity, 0..1. `carbon`: grid carbon intensity, gCO2/kWh. */
export type SeriesKind = 'share' | 'carbon';

/** Outside its recorded span a series replays in a loop, or holds its first (before) or last (after) value. */
export type Outside = 'loop' | 'clamp';

/**
 * A green-power signal as a step function: the value at a time is that of the last point at or before it.
 * A daily profile's points are times of day on 1970-01-01 UTC, and it repeats every day whatever `outside`
 * says, because a profile is periodic by definition.
 */
export interface Series {
  name: string;
  kind: SeriesKind;
  daily: boolean;
  /** Sorted by time. */
  points: readonly Point[];
  /** The smallest gap between points: a grid this fine misses no change of a regular series, even one whose
   *  resolution changes (gb_ci.csv goes from 30 to 15 minutes in October 2020). */
  stepMs: number;
  /** The first point's time. */
  startMs: number;
  /** End of the recorded span, exclusive: the last point holds for one step (a daily profile: start + 1 day). */
  endMs: number;
  valueAt(tMs: number): number;
  /** Rows of the file left out because their value was blank. */
  skipped?: number;
}

export interface SeriesOptions {
  /** The value column by header name, case-insensitive; by default found as parseSeries says. */
  column?: string;
  /** Default `loop`. */
  outside?: Outside;
  /** What the value column holds, whatever its header says (by default: from the header). */
  kind?: SeriesKind;
}

import { DAY_MS, HOUR_MS } from '../time';

export { DAY_MS, HOUR_MS };

/** Reads a signal CSV file: see {@link parseSeries}. */
export function loadSeries(path: string, options: SeriesOptions = {}): Series {
  return seriesOf(readTable(path), path, options);
}

/**
 * Reads a grid carbon-intensity file (gCO2/kWh): the column `column` names, taken as an intensity whatever its
 * header says, or the one parseSeries finds, which must be one. Throws, naming the file, otherwise (and
 * `columnSetting`, the flag or variable that names the column, when the caller has one).
 */
export function loadCarbonSeries(path: string, options: { column?: string; outside?: Outside; columnSetting?: string } = {}): Series {
  const series = loadSeries(path, { column: options.column, outside: options.outside, kind: options.column ? 'carbon' : undefined });
  if (series.kind !== 'carbon') {
    const naming = options.columnSetting ? `, or name its column with ${options.columnSetting}` : '';
    throw new Error(`${path}: expected carbon intensity (a column named like "Carbon Intensity"${naming})`);
  }
  return series;
}

/**
 * Parses a signal CSV with a header row. The first column is the time: ISO date-times (zone-less ones are
 * UTC, `2019-12-20 00:00:00` as in the carbon-intensity traces), Unix times in seconds or milliseconds, or
 * `HH:MM` for a daily profile. The value column is the one named, else the first of numbers whose header
 * names a signal (carbon, CO2, intensity, CI, green, renewable, share), else the first of numbers that is
 * not a time: `Time,Carbon Intensity`, an electricityMaps export (`Datetime (UTC),Country,…,Carbon Intensity
 * gCO₂eq/kWh (direct),…`) and a per-fuel export (`timestamp,WND,SUN,…,avg_CI`) all work as they are. It is a
 * carbon intensity when its header says so (carbon, CO2, intensity or the word CI, and not a share or
 * percentage such as "Carbon-free energy percentage"), otherwise a green share: 0..1, or a percentage when
 * above 1 (decided per value, as the agents' share files always were).
 * Rows whose value is blank (gaps in a recorded trace) are left out: the value before holds over them.
 */
export function parseSeries(text: string, name: string, options: SeriesOptions = {}): Series {
  return seriesOf(parseTable(text, name), name, options);
}

function seriesOf({ header, rows }: Table, name: string, options: SeriesOptions): Series {
  if (rows.length === 0) throw new Error(`${name}: no rows`);
  const column = valueColumn(header, rows, options.column, name);
  const kind: SeriesKind = options.kind ?? (CARBON_HEADER.test(header[column]) && !SHARE_HEADER.test(header[column]) ? 'carbon' : 'share');
  const daily = DAILY_TIME.test(rows[0][0]);
  const points: Point[] = [];
  let skipped = 0;
  for (const cells of rows) {
    const cell = cells[column];
    if (cell === undefined || cell === '') {
      skipped++;
      continue;
    }
    const value = parseValue(cell, kind, name);
    points.push({ atMs: parseTime(cells[0], daily, name), value });
  }
  if (points.length === 0) throw new Error(`${name}: no values in column ${header[column]} (every row is blank there)`);
  return { ...createSeries(points, { name, kind, daily, outside: options.outside }), skipped };
}

export interface SeriesSpec {
  name: string;
  kind: SeriesKind;
  daily?: boolean;
  outside?: Outside;
}

/** A series from points in any order (for signals that do not come from a file, and for tests). */
export function createSeries(points: readonly Point[], spec: SeriesSpec): Series {
  const { name, kind, daily = false } = spec;
  if (points.length === 0) throw new Error(`${name}: no points`);
  const sorted = [...points].sort((a, b) => a.atMs - b.atMs);
  const startMs = sorted[0].atMs;
  const lastMs = sorted[sorted.length - 1].atMs;
  if (daily && lastMs - startMs >= DAY_MS) throw new Error(`${name}: a daily profile spans more than a day`);
  const stepMs = stepOf(sorted, daily ? startMs + DAY_MS : undefined);
  if (!Number.isFinite(stepMs)) throw new Error(`${name}: a recorded series needs two distinct times to know its step`);
  const endMs = daily ? startMs + DAY_MS : lastMs + stepMs;
  const loop = daily || (spec.outside ?? 'loop') === 'loop';
  return {
    name,
    kind,
    daily,
    points: sorted,
    stepMs,
    startMs,
    endMs,
    valueAt: (tMs) => valueAtOrBefore(sorted, loop ? wrap(tMs, startMs, endMs) : tMs),
  };
}

/**
 * The green share equivalent to a carbon intensity, for places that need a share when only the intensity is
 * known: 1 − ci/fossilCi, clamped to 0..1. An approximation that treats the grid as a mix of zero-carbon
 * sources and one fossil source of intensity `fossilCi` (450 gCO2/kWh, roughly gas-fired generation).
 */
export function shareFromCarbon(ci: number, fossilCi = 450): number {
  return Math.min(1, Math.max(0, 1 - ci / fossilCi));
}

/** Index of the last point at or before `tMs`, or -1 when all are later. Binary search on sorted points. */
export function lastIndexAtOrBefore(points: readonly Point[], tMs: number): number {
  let lo = -1;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (points[mid].atMs <= tMs) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * What a live forecaster has been shown of a signal: observations in time order, the last `keepMs` of them
 * and the one in force at its start (older ones are dropped in bulk, amortised O(1)).
 */
export class Observations {
  private points: Point[] = [];

  constructor(
    /** Who keeps them, for the error an observation out of order throws. */
    private readonly owner: string,
    private readonly keepMs: number,
  ) {}

  /** Records the value observed at `atMs`; throws if it is before the last one. */
  push(atMs: number, value: number): void {
    const points = this.points;
    const lastMs = points.length > 0 ? points[points.length - 1].atMs : -Infinity;
    if (atMs < lastMs) throw new RangeError(`${this.owner}: observation at ${atMs} is before the last one at ${lastMs}`);
    points.push({ atMs, value });
    const oldest = lastIndexAtOrBefore(points, atMs - this.keepMs);
    if (oldest > points.length / 2) this.points = points.slice(oldest);
  }

  /** The observation in force at `tMs`, if one was made at or before it. */
  at(tMs: number): number | undefined {
    return this.points[lastIndexAtOrBefore(this.points, tMs)]?.value;
  }

  /** The observations kept, oldest first (read-only: a copy is not made); older than `keepMs` ones too, until dropped in bulk. */
  get kept(): readonly Point[] {
    return this.points;
  }

  /** The observations kept made at or after `tMs`, oldest first (a copy). */
  since(tMs: number): Point[] {
    const i = lastIndexAtOrBefore(this.points, tMs);
    return this.points.slice(i >= 0 && this.points[i].atMs === tMs ? i : i + 1);
  }

  /** Whether `tMs` is at or after the first observation kept. */
  covers(tMs: number): boolean {
    return this.points.length > 0 && tMs >= this.points[0].atMs;
  }
}

/**
 * The time-weighted mean of a step signal over its last `spanMs` (over all of it while it is younger): each
 * observation holds until the next, the latest counting from when it was made. Kept as running areas, so
 * reading it is O(1) however often the signal is observed.
 */
export class RecentLevel {
  private readonly points: Point[] = [];
  private head = 0;
  /** The area under the step function from points[head] to the latest observation. */
  private area = 0;

  constructor(private readonly spanMs: number) {}

  push(atMs: number, value: number): void {
    const { points } = this;
    const last = points[points.length - 1];
    if (last && atMs < last.atMs) throw new RangeError(`recent level: observation at ${atMs} is before the last one at ${last.atMs}`);
    if (last) this.area += last.value * (atMs - last.atMs);
    points.push({ atMs, value });
    // Whole steps that ended before the span began no longer count.
    while (this.head + 1 < points.length && points[this.head + 1].atMs <= atMs - this.spanMs) {
      this.area -= points[this.head].value * (points[this.head + 1].atMs - points[this.head].atMs);
      this.head++;
    }
    if (this.head > 1024 && this.head > points.length / 2) {
      points.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The mean over the span up to the latest observation; the latest value while it is the only one; undefined before any. */
  get mean(): number | undefined {
    const { points } = this;
    if (points.length === 0) return undefined;
    const latest = points[points.length - 1];
    const first = points[this.head];
    const fromMs = Math.max(first.atMs, latest.atMs - this.spanMs);
    if (latest.atMs <= fromMs) return latest.value;
    // The first step kept may have begun before the span: only its part inside counts.
    return (this.area - first.value * (fromMs - first.atMs)) / (latest.atMs - fromMs);
  }
}

/** The step function's value at `tMs`; before the first point, the first value (nothing earlier is known). */
export function valueAtOrBefore(points: readonly Point[], tMs: number): number {
  return points[Math.max(0, lastIndexAtOrBefore(points, tMs))].value;
}

/**
 * `fromMs` followed by the grid times `anchorMs + k·stepMs` in (fromMs, toMs]: the instants at which a step
 * signal sampled on that grid can change, starting from now. Only `[fromMs]` when `toMs <= fromMs`.
 */
export function gridFrom(fromMs: number, toMs: number, stepMs: number, anchorMs = 0): number[] {
  const times = [fromMs];
  for (let t = nextGridTime(fromMs, stepMs, anchorMs); t <= toMs; t += stepMs) times.push(t);
  return times;
}

/** The first grid time strictly after `tMs`. */
export function nextGridTime(tMs: number, stepMs: number, anchorMs = 0): number {
  return anchorMs + (Math.floor((tMs - anchorMs) / stepMs) + 1) * stepMs;
}

const DAILY_TIME = /^(\d{1,2}):(\d{2})$/;
const HAS_ZONE = /(Z|[+-]\d{2}:?\d{2})$/i;

/** Headers of a signal's value column, and of those that say a carbon intensity or, though they name carbon, a share. */
// `CI` alone, as a word (`avg_CI` of the per-fuel exports derived from the EIA's grid monitor), is carbon intensity.
const SIGNAL_HEADER = /carbon|co2|co₂|intensity|(?<![a-z])ci(?![a-z])|green|renewable|share/i;
const CARBON_HEADER = /carbon|co2|co₂|intensity|(?<![a-z])ci(?![a-z])/i;
const SHARE_HEADER = /free|percent|%|share|renewable/i;
const TIME_HEADER = /time|date/i;
/** Rows looked at to tell a column of numbers. */
const SNIFF_ROWS = 20;

function valueColumn(header: readonly string[], rows: readonly (readonly string[])[], wanted: string | undefined, name: string): number {
  if (wanted !== undefined) {
    const column = header.findIndex((h, i) => i > 0 && h.toLowerCase() === wanted.toLowerCase());
    if (column < 0) throw new Error(`${name}: no column ${wanted} in ${header.join(',')}`);
    return column;
  }
  if (header.length < 2) throw new Error(`${name}: the header needs a time and a value column`);
  const sample = rows.slice(0, SNIFF_ROWS);
  const blank = (cell: string | undefined) => cell === undefined || cell === '';
  // Numbers, with gaps: a column blank in every sampled row (a trailing note column) is no candidate.
  const numbers = (i: number) => sample.some((r) => !blank(r[i])) && sample.every((r) => blank(r[i]) || Number.isFinite(Number(r[i])));
  const candidates = header.map((_, i) => i).filter((i) => i > 0 && numbers(i));
  const column = candidates.find((i) => SIGNAL_HEADER.test(header[i])) ?? candidates.find((i) => !TIME_HEADER.test(header[i]));
  if (column !== undefined) return column;
  // Nothing looks like a value: the second column, refused below with the cell that is not a number.
  return 1;
}

function parseValue(cell: string, kind: SeriesKind, name: string): number {
  const value = Number(cell);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}: bad ${kind === 'carbon' ? 'carbon intensity' : 'share'} ${cell}`);
  return kind === 'share' && value > 1 ? Math.min(1, value / 100) : value;
}

/** A Unix time: seconds below this, milliseconds from it (1e11 s is the year 5138; 1e11 ms, 1973). */
const UNIX_MS_FROM = 1e11;
const UNIX_TIME = /^\d{9,13}(\.\d+)?$/;

function parseTime(cell: string, daily: boolean, name: string): number {
  let atMs: number;
  if (daily) atMs = timeOfDayMs(cell);
  else if (UNIX_TIME.test(cell)) {
    const n = Number(cell);
    atMs = Math.round(n < UNIX_MS_FROM ? n * 1000 : n);
  } else atMs = Date.parse(asUtcIso(cell));
  if (!Number.isFinite(atMs)) throw new Error(`${name}: bad time ${cell}`);
  return atMs;
}

function timeOfDayMs(text: string): number {
  const match = DAILY_TIME.exec(text);
  if (!match) return NaN;
  const hours = Number(match[1]);
  const minutes = Number(match[2]);
  return hours < 24 && minutes < 60 ? (hours * 60 + minutes) * 60_000 : NaN;
}

/** Zone-less times are UTC; `Date.parse` would read a zone-less date-time as local time. */
function asUtcIso(text: string): string {
  const iso = text.replace(' ', 'T');
  return HAS_ZONE.test(iso) ? iso : `${iso}Z`;
}

/** A gap between points shorter than the others counts as the step only if at least this share of the gaps are that short. */
const STEP_MIN_SHARE = 0.01;
/** Below this many gaps, the smallest one is the step. */
const STEP_MIN_GAPS = 100;

/**
 * The step of a series: its smallest gap between points (including the wrap-around to `wrapAtMs` for a
 * daily profile) that at least 1% of its gaps are no longer than. A trace whose resolution changes keeps the
 * finer one (gb_ci.csv goes from 30 to 15 minutes), and one stray row a minute after another does not make
 * the step a minute: every forecast and simulation would then work on a grid fifteen times finer, for
 * nothing. Fewer than 100 gaps: the smallest.
 */
function stepOf(sorted: readonly Point[], wrapAtMs?: number): number {
  const gaps: number[] = [];
  if (wrapAtMs !== undefined) gaps.push(wrapAtMs - sorted[sorted.length - 1].atMs);
  for (let i = 1; i < sorted.length; i++) gaps.push(sorted[i].atMs - sorted[i - 1].atMs);
  const positive = gaps.filter((d) => d > 0).sort((a, b) => a - b);
  if (positive.length === 0) return Infinity;
  if (positive.length < STEP_MIN_GAPS) return positive[0];
  return positive[Math.ceil(positive.length * STEP_MIN_SHARE) - 1];
}

/** `tMs` moved by whole spans into [startMs, endMs). */
function wrap(tMs: number, startMs: number, endMs: number): number {
  const span = endMs - startMs;
  return startMs + ((((tMs - startMs) % span) + span) % span);
}
