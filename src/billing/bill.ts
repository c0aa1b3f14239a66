import { POOLS, billingClassSchema, csvRows, type Bill, type BillingClass, type BillLine, type BillTotals, type MeteredItem, type Pool, type TaskUsage, type UsageSegment } from '../protocol';
import { BASIS_POINTS, FEN_PER_YUAN, MILLI_FEN_PER_FEN, bandOf, unitPrice, type PriceTable, type TimeOfUseBand } from './prices';
import { ITEM_UNITS, METERED_ITEMS, decimal, divideHalfUp, exactNumber, periodRange, selectSegments } from './usage';

/**
 * Bills: a tenant's metered use in a period, priced line by line. Rounding rule: a line's charge is
 * quantity × unit price computed exactly in integers (BigInt) and rounded half-up to the fen once; its
 * public-interest discount is charge × discount basis points, rounded half-up to the fen; its amount is
 * charge − discount. Bill totals are exact sums of the line figures, never rounded again.
 */

/** Bill lines of a tenant are ordered by billing class as the protocol lists them. */
const BILLING_CLASSES = billingClassSchema.options;

export type { Bill, BillLine, BillTotals, Quantity } from '../protocol';

/** What makes a line: use of one item, in one pool, GPU model, band and billing class. */
interface LineKey {
  pool: Pool;
  item: MeteredItem;
  gpuModel: string | null;
  band: TimeOfUseBand | null;
  billingClass: BillingClass;
}

/** The items a segment used, with their quantities in base units; items not used are left out. */
function itemsOf(s: UsageSegment): [MeteredItem, string | null, number][] {
  const items: [MeteredItem, string | null, number][] = [
    ['cpu', null, s.cpuMilliSeconds],
    ...Object.entries(s.gpuMilliSeconds).map(([model, ms]): [MeteredItem, string | null, number] => ['gpu', model, ms]),
    ['memory', null, s.memMiBSeconds],
    ['energy', null, s.energyMilliWh],
  ];
  return items.filter(([, , quantity]) => quantity > 0);
}

/** The tenant's use in [fromMs, toMs), summed per line key in base units. */
function lineQuantities(tenant: string, fromMs: number, toMs: number, usages: readonly TaskUsage[], table: PriceTable): { key: LineKey; base: bigint }[] {
  const lines = new Map<string, { key: LineKey; base: bigint }>();
  for (const [usage, segment] of selectSegments(usages, { tenant, fromMs, toMs })) {
    for (const [item, gpuModel, quantity] of itemsOf(segment)) {
      const band = bandOf(table, usage.pool, item, segment.hourStartMs);
      const id = JSON.stringify([usage.pool, item, gpuModel, band?.name ?? null, usage.billingClass]);
      const line = lines.get(id) ?? { key: { pool: usage.pool, item, gpuModel, band, billingClass: usage.billingClass }, base: 0n };
      line.base += BigInt(quantity);
      lines.set(id, line);
    }
  }
  return [...lines.values()];
}

/** Lines in reading order: pool, item, GPU model, band as the table lists them, standard before public interest. */
function lineOrder(table: PriceTable): (a: LineKey, b: LineKey) => number {
  const rank = (k: LineKey): (number | string)[] => [
    POOLS.indexOf(k.pool),
    METERED_ITEMS.indexOf(k.item),
    k.gpuModel ?? '',
    k.band ? table.timeOfUse.indexOf(k.band) : -1,
    BILLING_CLASSES.indexOf(k.billingClass),
  ];
  return (a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    const i = ra.findIndex((v, j) => v !== rb[j]);
    return i < 0 ? 0 : ra[i] < rb[i] ? -1 : 1;
  };
}

/** One priced line, by the rounding rule of this module. */
function priceLine(key: LineKey, base: bigint, table: PriceTable): BillLine {
  const prices = table.pools[key.pool];
  const unit = ITEM_UNITS[key.item];
  const price = unitPrice(prices, key.item, key.gpuModel, key.band);
  const charge = divideHalfUp(base * BigInt(price.milliFen), BigInt(unit.basePerUnit * MILLI_FEN_PER_FEN));
  const discountBp = key.billingClass === 'public-interest' ? prices.publicInterestDiscountBp : 0;
  const discount = divideHalfUp(charge * BigInt(discountBp), BigInt(BASIS_POINTS));
  return {
    pool: key.pool,
    item: key.item,
    gpuModel: key.gpuModel,
    band: key.band?.name ?? null,
    billingClass: key.billingClass,
    quantity: { base: exactNumber(base, `${key.pool} ${key.item} quantity`), baseUnit: unit.baseUnit, value: decimal(base, unit.basePerUnit, 3), unit: unit.unit },
    unitPriceMilliFen: price.milliFen,
    unitPriceFen: decimal(price.milliFen, MILLI_FEN_PER_FEN, 3),
    multiplierBp: price.multiplierBp,
    ceilingApplied: price.ceilingApplied,
    chargeFen: exactNumber(charge, 'a line charge'),
    discountBp,
    discountFen: exactNumber(discount, 'a line discount'),
    amountFen: exactNumber(charge - discount, 'a line amount'),
  };
}

/** Sums of the line figures, exactly. */
function totalsOf(lines: readonly BillLine[]): BillTotals {
  const sum = (field: 'chargeFen' | 'discountFen' | 'amountFen') => exactNumber(lines.reduce((s, l) => s + BigInt(l[field]), 0n), `the total ${field}`);
  const amountFen = sum('amountFen');
  return { chargeFen: sum('chargeFen'), discountFen: sum('discountFen'), amountFen, amount: decimal(amountFen, FEN_PER_YUAN, 2) };
}

/** The bill of a tenant for a month or day of local time, from the task usages (others' usages are ignored). */
export function billFor(tenant: string, period: string, usages: readonly TaskUsage[], table: PriceTable): Bill {
  const range = periodRange(period, table.timeZoneOffsetMinutes);
  const order = lineOrder(table);
  const lines = lineQuantities(tenant, range.fromMs, range.toMs, usages, table)
    .sort((a, b) => order(a.key, b.key))
    .map(({ key, base }) => priceLine(key, base, table));
  return {
    tenant,
    period,
    currency: table.currency,
    generatedFor: range.interval,
    fromMs: range.fromMs,
    toMs: range.toMs,
    timeZoneOffsetMinutes: range.timeZoneOffsetMinutes,
    lines,
    totals: totalsOf(lines),
  };
}

const CSV_HEADER = [
  'tenant',
  'period',
  'currency',
  'pool',
  'item',
  'gpu_model',
  'band',
  'billing_class',
  'quantity',
  'unit',
  'unit_price_fen',
  'ceiling_applied',
  'charge_fen',
  'discount_bp',
  'discount_fen',
  'amount_fen',
  'amount',
];

/** The bill as CSV (RFC 4180, CRLF line ends): a header, one row per line, and a total row. */
export function billCsv(bill: Bill): string {
  const head = [bill.tenant, bill.period, bill.currency];
  const rows = [
    CSV_HEADER,
    ...bill.lines.map((l) => [
      ...head,
      l.pool,
      l.item,
      l.gpuModel,
      l.band,
      l.billingClass,
      l.quantity.value,
      l.quantity.unit,
      l.unitPriceFen,
      l.ceilingApplied,
      l.chargeFen,
      l.discountBp,
      l.discountFen,
      l.amountFen,
      decimal(l.amountFen, FEN_PER_YUAN, 2),
    ]),
    [...head, 'total', null, null, null, null, null, null, null, null, bill.totals.chargeFen, null, bill.totals.discountFen, bill.totals.amountFen, bill.totals.amount],
  ];
  return csvRows(rows);
}
