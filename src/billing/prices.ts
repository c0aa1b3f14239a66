import { z } from 'zod';
import { loadDataFile, parseDataText } from '../files';
import { currencySchema, meteredItemSchema, poolSchema, type MeteredItem, type Pool } from '../protocol';
import { DEFAULT_TIME_ZONE_OFFSET_MINUTES, divideHalfUp, localHourOfDay } from './usage';

/**
 * The price table. Unit prices are integers in **milli-fen** (1/1000 fen, so 1 yuan = 100 000 milli-fen) per
 * display unit — per core-hour, per GPU-hour, per GiB-hour of memory, per kWh — because real tariffs such as
 * 0.085 CNY a core-hour are fractions of a fen. Multipliers and discounts are integer basis points (10 000 = 1×).
 */
export const MILLI_FEN_PER_FEN = 1000;
export const FEN_PER_YUAN = 100;
export const BASIS_POINTS = 10_000;

const milliFen = z.number().int().min(0);

/** One time-of-use band: a multiplier over hour ranges `[start, end)` of the local day, e.g. `[[8, 11], [18, 22]]`. */
const bandSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/, 'must be a short lower-case name such as valley, flat or peak'),
  /** 5000 = half the list price, 15000 = one and a half times. */
  multiplierBp: z.number().int().min(0).max(10 * BASIS_POINTS),
  hours: z
    .array(
      z
        .tuple([z.number().int().min(0).max(23), z.number().int().min(1).max(24)])
        .refine(([start, end]) => start < end, 'must be [start, end) with start < end, hours of the local day 0–24'),
    )
    .min(1),
});
export type TimeOfUseBand = z.infer<typeof bandSchema>;

/** Every local hour of the day must fall in exactly one band, so that each metered hour has one price. */
function checkBandsCoverTheDay(bands: TimeOfUseBand[], ctx: z.RefinementCtx): void {
  const owner: (string | undefined)[] = Array.from({ length: 24 });
  bands.forEach((band, i) => {
    if (bands.findIndex((b) => b.name === band.name) !== i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `band ${band.name} is defined twice` });
    for (const [start, end] of band.hours) {
      for (let h = start; h < end; h++) {
        if (owner[h] !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'hours'], message: `hour ${h}:00 is in both ${owner[h]} and ${band.name}` });
        owner[h] = band.name;
      }
    }
  });
  const missing = owner.flatMap((name, h) => (name === undefined ? [`${h}:00`] : []));
  if (missing.length > 0) ctx.addIssue({ code: 'custom', path: [], message: `hours ${missing.join(', ')} are in no band; every hour of the day needs one` });
}

/** Prices of one pool, in milli-fen per display unit. */
const poolPricesSchema = z.strictObject({
  pricesMilliFen: z.strictObject({
    /** Per core-hour. */
    cpu: milliFen,
    /** Per GPU-hour by GPU model; `default` prices models not listed. */
    gpu: z.object({ default: milliFen }).catchall(milliFen),
    /** Per GiB-hour of memory. */
    memory: milliFen.default(0),
    /** Per kWh of energy, PUE included. */
    energy: milliFen,
  }),
  /** Government-guided ceilings on the unit price after the time-of-use multiplier: the billed unit price is min(price, ceiling). */
  ceilingsMilliFen: z.partialRecord(meteredItemSchema, milliFen).default({}),
  /** The items whose price follows the time-of-use bands; the others are flat. */
  timeOfUse: z.array(meteredItemSchema).default(['energy']),
  /** Discount on every line of public-interest work; 10 000 makes it free. */
  publicInterestDiscountBp: z.number().int().min(0).max(BASIS_POINTS).default(0),
});
export type PoolPrices = z.infer<typeof poolPricesSchema>;

export const priceTableSchema = z.strictObject({
  currency: currencySchema,
  /**
   * The cluster's local time, minutes east of UTC, for time-of-use hours and calendar periods. Whole hours only:
   * usage is metered in UTC clock hours, which then fall in exactly one local hour.
   */
  timeZoneOffsetMinutes: z.number().int().min(-720).max(840).multipleOf(60, 'must be a whole number of hours (a multiple of 60)').default(DEFAULT_TIME_ZONE_OFFSET_MINUTES),
  timeOfUse: z
    .array(bandSchema)
    .min(1)
    .superRefine(checkBandsCoverTheDay)
    .default([{ name: 'flat', multiplierBp: BASIS_POINTS, hours: [[0, 24]] }]),
  pools: z.record(poolSchema, poolPricesSchema),
});
export type PriceTable = z.infer<typeof priceTableSchema>;
export type PriceTableInput = z.input<typeof priceTableSchema>;

/** Validates a price table given as YAML text; errors name `source` and the field. */
export function parsePriceTable(text: string, source: string): PriceTable {
  return parseDataText(text, priceTableSchema, source);
}

/** Reads and validates a price table file (YAML); errors name the file and the field. */
export function loadPriceTable(path: string): PriceTable {
  return loadDataFile(path, priceTableSchema);
}

/**
 * Illustrative prices (the content of `configs/prices.yaml`): a north-western hub's industrial tariff with a
 * valley at night and two peaks, compute at list prices of public computing platforms, GPU time of use in the
 * intelligent pool, ceilings on GPU-hours and kWh, and public-interest work at half price (free in the super pool).
 */
export const DEFAULT_PRICE_TABLE: PriceTable = priceTableSchema.parse({
  currency: 'CNY',
  timeZoneOffsetMinutes: 480,
  timeOfUse: [
    { name: 'valley', multiplierBp: 5_000, hours: [[0, 8]] },
    { name: 'flat', multiplierBp: 10_000, hours: [[11, 18], [22, 24]] },
    { name: 'peak', multiplierBp: 15_000, hours: [[8, 11], [18, 22]] },
  ],
  pools: {
    general: {
      pricesMilliFen: { cpu: 8_000, gpu: { default: 1_200_000 }, memory: 400, energy: 60_000 },
      ceilingsMilliFen: { cpu: 12_000, energy: 100_000 },
      timeOfUse: ['energy'],
      publicInterestDiscountBp: 5_000,
    },
    intelligent: {
      pricesMilliFen: { cpu: 8_000, gpu: { default: 1_200_000, A800: 1_500_000, H800: 2_000_000, '910B': 1_000_000 }, memory: 400, energy: 60_000 },
      ceilingsMilliFen: { cpu: 12_000, gpu: 1_800_000, energy: 100_000 },
      timeOfUse: ['gpu', 'energy'],
      publicInterestDiscountBp: 5_000,
    },
    super: {
      pricesMilliFen: { cpu: 6_000, gpu: { default: 1_200_000 }, memory: 0, energy: 60_000 },
      ceilingsMilliFen: { cpu: 12_000, energy: 100_000 },
      timeOfUse: ['energy'],
      publicInterestDiscountBp: 10_000,
    },
  },
} satisfies PriceTableInput);

/** A unit price as billed: the list price times the band's multiplier, rounded half-up to the milli-fen, capped by the ceiling. */
export interface UnitPrice {
  listMilliFen: number;
  multiplierBp: number;
  milliFen: number;
  ceilingApplied: boolean;
}

/** The list price of an item; GPU models not in the table take the pool's `default`. */
function listPrice(prices: PoolPrices, item: MeteredItem, gpuModel: string | null): number {
  const gpu = prices.pricesMilliFen.gpu;
  if (item !== 'gpu') return prices.pricesMilliFen[item];
  return gpuModel !== null && Object.hasOwn(gpu, gpuModel) ? gpu[gpuModel] : gpu.default;
}

/** The billed unit price of an item in a pool, in the band of its hour (null: flat). */
export function unitPrice(prices: PoolPrices, item: MeteredItem, gpuModel: string | null, band: TimeOfUseBand | null): UnitPrice {
  const listMilliFen = listPrice(prices, item, gpuModel);
  const multiplierBp = band?.multiplierBp ?? BASIS_POINTS;
  const multiplied = Number(divideHalfUp(BigInt(listMilliFen) * BigInt(multiplierBp), BigInt(BASIS_POINTS)));
  const ceiling = prices.ceilingsMilliFen[item];
  const ceilingApplied = ceiling !== undefined && multiplied > ceiling;
  return { listMilliFen, multiplierBp, milliFen: ceilingApplied ? ceiling : multiplied, ceilingApplied };
}

/** The time-of-use band of a metered hour, by its local hour of day; null when the item's price in the pool is flat. */
export function bandOf(table: PriceTable, pool: Pool, item: MeteredItem, hourStartMs: number): TimeOfUseBand | null {
  if (!table.pools[pool].timeOfUse.includes(item)) return null;
  const hour = localHourOfDay(hourStartMs, table.timeZoneOffsetMinutes);
  const band = table.timeOfUse.find((b) => b.hours.some(([start, end]) => hour >= start && hour < end));
  if (!band) throw new Error(`timeOfUse: hour ${hour}:00 is in no band`);
  return band;
}
