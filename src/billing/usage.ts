import { z } from 'zod';
import type { MeteredItem, Pool, TaskUsage, UsageFigures, UsageFilter, UsageSegment, UsageSummary } from '../protocol';
import { HOUR_MS } from '../time';

/**
 * Usage summaries: metered segments summed in their integer base units, so that every total is exactly the
 * sum of its breakdowns, and converted to display units (core-hours, kWh, …) only when the figures are built.
 * Also the integer arithmetic and the calendar periods that billing and disclosure share.
 */

/** China Standard Time, UTC+8 all year (no daylight saving time): the cluster's local time. */
export const DEFAULT_TIME_ZONE_OFFSET_MINUTES = 480;
const MINUTE_MS = 60_000;
const DAY_MS = 24 * HOUR_MS;
const MG_PER_KG = 1_000_000;

// The documents' shapes (summaries, bills, disclosure) are the protocol's: the API client reads them too.
export { METERED_ITEMS, meteredItemSchema, usageFilterSchema, type GpuModelFigures, type MeteredItem, type UsageFigures, type UsageFilter, type UsageSummary } from '../protocol';

/** How an item is metered (an integer base unit) and how it is shown and priced (a display unit). */
export interface ItemUnit {
  baseUnit: string;
  unit: string;
  basePerUnit: number;
}
export const ITEM_UNITS: Record<MeteredItem, ItemUnit> = {
  cpu: { baseUnit: 'milli-core-second', unit: 'core-hour', basePerUnit: 1000 * 3600 },
  gpu: { baseUnit: 'milli-GPU-second', unit: 'GPU-hour', basePerUnit: 1000 * 3600 },
  memory: { baseUnit: 'MiB-second', unit: 'GiB-hour', basePerUnit: 1024 * 3600 },
  energy: { baseUnit: 'milliwatt-hour', unit: 'kWh', basePerUnit: 1_000_000 },
};

/** `n / d` rounded half-up, for `n ≥ 0` and `d > 0`: the one rounding rule of billing and display. */
export function divideHalfUp(n: bigint, d: bigint): bigint {
  return (2n * n + d) / (2n * d);
}

/** `base / basePerUnit` as a decimal string with `digits` places, rounded half-up; exact, since it works on integers. */
export function decimal(base: number | bigint, basePerUnit: number | bigint, digits: number): string {
  const scaled = divideHalfUp(BigInt(base) * 10n ** BigInt(digits), BigInt(basePerUnit)).toString();
  if (digits === 0) return scaled;
  const padded = scaled.padStart(digits + 1, '0');
  return `${padded.slice(0, -digits)}.${padded.slice(-digits)}`;
}

/**
 * A BigInt result as a number, refusing to lose precision. Money and quantities leave this module as numbers
 * (JSON has no BigInt); a safe integer is exact, so only a sum beyond 2^53 could be wrong, and it throws instead.
 */
export function exactNumber(n: bigint | number, what: string): number {
  const value = Number(n);
  if (!Number.isSafeInteger(value)) throw new RangeError(`${what} is ${n}, beyond the exact integer range of a number`);
  return value;
}

/** A calendar month `YYYY-MM` or day `YYYY-MM-DD` in the cluster's local time. */
export const periodSchema = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$/, 'must be a month YYYY-MM or a day YYYY-MM-DD')
  .refine((p) => p.length === 7 || localDate(p).getUTCDate() === Number(p.slice(8)), 'is not a day of the calendar');

/** A period as the half-open interval of instants it covers, and as ISO 8601 local times for people. */
export interface PeriodRange {
  period: string;
  fromMs: number;
  toMs: number;
  timeZoneOffsetMinutes: number;
  /** `2026-11-01T00:00:00+08:00/2026-12-01T00:00:00+08:00`. */
  interval: string;
}

/** The local midnight that starts a `YYYY-MM[-DD]` period, as if local time were UTC. */
function localDate(period: string): Date {
  const [year, month, day = 1] = period.split('-').map(Number);
  return new Date(Date.UTC(year, month - 1, day));
}

/**
 * The instants `[fromMs, toMs)` of a month or day in local time: local midnight at its start to local
 * midnight after its end. Segments are selected by the start of their clock hour.
 */
export function periodRange(period: string, timeZoneOffsetMinutes = DEFAULT_TIME_ZONE_OFFSET_MINUTES): PeriodRange {
  const checked = periodSchema.safeParse(period);
  if (!checked.success) throw new RangeError(`period ${JSON.stringify(period)}: ${checked.error.issues[0].message}`);
  const start = localDate(period);
  const end = new Date(start);
  if (period.length === 7) end.setUTCMonth(end.getUTCMonth() + 1);
  else end.setUTCDate(end.getUTCDate() + 1);
  const offsetMs = timeZoneOffsetMinutes * MINUTE_MS;
  const fromMs = start.getTime() - offsetMs;
  const toMs = end.getTime() - offsetMs;
  return { period, fromMs, toMs, timeZoneOffsetMinutes, interval: `${localIso(fromMs, timeZoneOffsetMinutes)}/${localIso(toMs, timeZoneOffsetMinutes)}` };
}

/** An instant as local ISO 8601 time with its offset, e.g. `2026-11-01T00:00:00+08:00`. */
function localIso(ms: number, offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${new Date(ms + offsetMinutes * MINUTE_MS).toISOString().slice(0, 19)}${offset}`;
}

/** The local hour of day (0–23) of an instant. */
export function localHourOfDay(ms: number, offsetMinutes: number): number {
  const local = (((ms + offsetMinutes * MINUTE_MS) % DAY_MS) + DAY_MS) % DAY_MS;
  return Math.floor(local / HOUR_MS);
}

/** The segments a filter selects, each with the task usage it belongs to. */
export function* selectSegments(usages: readonly TaskUsage[], filter: UsageFilter): Generator<[TaskUsage, UsageSegment]> {
  for (const usage of usages) {
    if (filter.tenant !== undefined && usage.tenant !== filter.tenant) continue;
    if (filter.pool !== undefined && usage.pool !== filter.pool) continue;
    if (filter.jobId !== undefined && usage.jobId !== filter.jobId) continue;
    for (const segment of usage.segments) {
      if (segment.hourStartMs >= (filter.fromMs ?? -Infinity) && segment.hourStartMs < (filter.toMs ?? Infinity)) yield [usage, segment];
    }
  }
}

/** Running integer sums of segments. Kept in Maps so that any tenant or model name is a safe key. */
class Tally {
  readonly jobs = new Set<string>();
  readonly gpuMilliSeconds = new Map<string, number>();
  cpuMilliSeconds = 0;
  memMiBSeconds = 0;
  energyMilliWh = 0;
  greenMilliWh = 0;
  carbonMg = 0;

  add(jobId: string, s: UsageSegment): void {
    this.jobs.add(jobId);
    this.cpuMilliSeconds += s.cpuMilliSeconds;
    for (const [model, ms] of Object.entries(s.gpuMilliSeconds)) this.gpuMilliSeconds.set(model, (this.gpuMilliSeconds.get(model) ?? 0) + ms);
    this.memMiBSeconds += s.memMiBSeconds;
    this.energyMilliWh += s.energyMilliWh;
    this.greenMilliWh += s.greenMilliWh;
    this.carbonMg += s.carbonMg;
  }

  /** The figures, each integer checked exact (the sums are of non-negative integers, so a safe total means exact partial sums). */
  figures(): UsageFigures {
    const gpuMilliSeconds = sortedRecord([...this.gpuMilliSeconds].map(([model, ms]) => [model, exactNumber(ms, `GPU ${model} milli-seconds`)]));
    const energyMilliWh = exactNumber(this.energyMilliWh, 'energy milliwatt-hours');
    const greenMilliWh = exactNumber(this.greenMilliWh, 'green milliwatt-hours');
    return {
      jobs: this.jobs.size,
      cpuMilliSeconds: exactNumber(this.cpuMilliSeconds, 'CPU milli-seconds'),
      gpuMilliSeconds,
      memMiBSeconds: exactNumber(this.memMiBSeconds, 'memory MiB-seconds'),
      energyMilliWh,
      greenMilliWh,
      carbonMg: exactNumber(this.carbonMg, 'carbon milligrams'),
      coreHours: this.cpuMilliSeconds / ITEM_UNITS.cpu.basePerUnit,
      gpuHours: Object.fromEntries(Object.entries(gpuMilliSeconds).map(([model, ms]) => [model, ms / ITEM_UNITS.gpu.basePerUnit])),
      memGiBHours: this.memMiBSeconds / ITEM_UNITS.memory.basePerUnit,
      kWh: energyMilliWh / ITEM_UNITS.energy.basePerUnit,
      greenKWh: greenMilliWh / ITEM_UNITS.energy.basePerUnit,
      greenShare: energyMilliWh === 0 ? null : greenMilliWh / energyMilliWh,
      carbonKg: this.carbonMg / MG_PER_KG,
    };
  }
}

/** A record with keys in a stable order (Object.fromEntries defines own properties, so `__proto__` is only a name). */
function sortedRecord<T>(entries: [string, T][]): Record<string, T> {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function tallyOf<K>(tallies: Map<K, Tally>, key: K): Tally {
  let tally = tallies.get(key);
  if (!tally) tallies.set(key, (tally = new Tally()));
  return tally;
}

function figuresOf(tallies: Map<string, Tally>): Record<string, UsageFigures> {
  return sortedRecord([...tallies].map(([key, tally]) => [key, tally.figures()]));
}

/** Totals and breakdowns by tenant, pool, job and GPU model of the segments a filter selects. */
export function summarize(usages: readonly TaskUsage[], filter: UsageFilter = {}): UsageSummary {
  const total = new Tally();
  const byTenant = new Map<string, Tally>();
  const byPool = new Map<Pool, Tally>();
  const byJob = new Map<string, Tally>();
  const byGpuModel = new Map<string, { jobs: Set<string>; gpuMilliSeconds: number }>();
  for (const [usage, segment] of selectSegments(usages, filter)) {
    for (const tally of [total, tallyOf(byTenant, usage.tenant), tallyOf(byPool, usage.pool), tallyOf(byJob, usage.jobId)]) tally.add(usage.jobId, segment);
    for (const [model, ms] of Object.entries(segment.gpuMilliSeconds)) {
      const gpu = byGpuModel.get(model) ?? { jobs: new Set<string>(), gpuMilliSeconds: 0 };
      gpu.jobs.add(usage.jobId);
      gpu.gpuMilliSeconds += ms;
      byGpuModel.set(model, gpu);
    }
  }
  return {
    filter,
    total: total.figures(),
    byTenant: figuresOf(byTenant),
    byPool: figuresOf(byPool),
    byJob: figuresOf(byJob),
    byGpuModel: sortedRecord(
      [...byGpuModel].map(([model, gpu]) => {
        const gpuMilliSeconds = exactNumber(gpu.gpuMilliSeconds, `GPU ${model} milli-seconds`);
        return [model, { jobs: gpu.jobs.size, gpuMilliSeconds, gpuHours: gpuMilliSeconds / ITEM_UNITS.gpu.basePerUnit }];
      }),
    ),
  };
}
