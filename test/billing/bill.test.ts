import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DEFAULT_PRICE_TABLE, ITEM_UNITS, billCsv, billFor, summarize, type Bill, type BillLine } from '../../src/billing';
import { HOUR, cst, usage, usagesArb } from './fixtures';

const KWH = 1_000_000;
const CORE_HOUR = 3_600_000;
const GIB_HOUR = 1024 * 3600;

/** The fields of a line a reader checks first. */
const brief = (l: BillLine) => [l.pool, l.item, l.gpuModel, l.band, l.billingClass, l.quantity.value, l.unitPriceFen, l.chargeFen, l.discountFen, l.amountFen];

/** A minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF row ends. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') (field += '"'), i++;
    else if (c === '"') quoted = !quoted;
    else if (quoted || (c !== ',' && c !== '\r')) field += c;
    else if (c === ',') row.push(field), (field = '');
    else if (text[i + 1] === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++;
    else throw new Error(`a bare CR at ${i}`);
  }
  if (row.length > 0 || field !== '') throw new Error('the last row has no CRLF');
  return rows;
}

describe('a bill computed by hand', () => {
  const usages = [
    usage('j1', {
      segments: [
        { hourStartMs: cst('2026-11-02T07:00'), cpuMilliSeconds: 4 * CORE_HOUR, memMiBSeconds: 10 * GIB_HOUR, energyMilliWh: KWH },
        { hourStartMs: cst('2026-11-02T08:00'), cpuMilliSeconds: CORE_HOUR * 0.375, energyMilliWh: KWH / 2 },
      ],
    }),
    usage('j2', { pool: 'intelligent', billingClass: 'public-interest', segments: [{ hourStartMs: cst('2026-11-02T12:00'), cpuMilliSeconds: 225_000, gpuMilliSeconds: { H800: 2 * CORE_HOUR }, energyMilliWh: 3 * KWH }] }),
    usage('j3', { pool: 'super', billingClass: 'public-interest', segments: [{ hourStartMs: cst('2026-11-30T23:00'), cpuMilliSeconds: 10 * CORE_HOUR }] }),
    usage('j4', { tenant: 'shanghai-meteo', segments: [{ hourStartMs: cst('2026-11-02T07:00'), cpuMilliSeconds: CORE_HOUR }] }),
  ];
  const bill = billFor('beijing', '2026-11', usages, DEFAULT_PRICE_TABLE);

  test('says whose bill it is, for when, in what currency', () => {
    expect(bill).toMatchObject({ tenant: 'beijing', period: '2026-11', currency: 'CNY', generatedFor: '2026-11-01T00:00:00+08:00/2026-12-01T00:00:00+08:00', fromMs: cst('2026-11-01T00:00'), toMs: cst('2026-12-01T00:00'), timeZoneOffsetMinutes: 480 });
  });

  test('has one line per pool, item, GPU model, band and class, priced, discounted and rounded half-up to the fen', () => {
    expect(bill.lines.map(brief)).toEqual([
      // 4.375 core-hours at 0.08 CNY: 35 fen.
      ['general', 'cpu', null, null, 'standard', '4.375', '8.000', 35, 0, 35],
      // 10 GiB-hours at 0.004 CNY: 4 fen.
      ['general', 'memory', null, null, 'standard', '10.000', '0.400', 4, 0, 4],
      // 1 kWh at 07:00 local, valley (half of 0.60 CNY): 30 fen; 0.5 kWh at 08:00, peak (1.5×): 45 fen.
      ['general', 'energy', null, 'valley', 'standard', '1.000', '30.000', 30, 0, 30],
      ['general', 'energy', null, 'peak', 'standard', '0.500', '90.000', 45, 0, 45],
      // 0.0625 core-hours at 8 fen is 0.5 fen: charged 1 fen; half of it off is 0.5 fen, rounded up to 1.
      ['intelligent', 'cpu', null, null, 'public-interest', '0.063', '8.000', 1, 1, 0],
      // 2 H800 GPU-hours at 20 CNY are capped at the 18 CNY ceiling: 36 CNY, half off.
      ['intelligent', 'gpu', 'H800', 'flat', 'public-interest', '2.000', '1800.000', 3600, 1800, 1800],
      ['intelligent', 'energy', null, 'flat', 'public-interest', '3.000', '60.000', 180, 90, 90],
      // Public-interest work in the super pool is free.
      ['super', 'cpu', null, null, 'public-interest', '10.000', '6.000', 60, 60, 0],
    ]);
    expect(bill.lines.find((l) => l.item === 'gpu')).toMatchObject({ unitPriceMilliFen: 1_800_000, multiplierBp: 10_000, ceilingApplied: true, discountBp: 5000 });
    expect(bill.lines[0].quantity).toEqual({ base: 15_750_000, baseUnit: 'milli-core-second', value: '4.375', unit: 'core-hour' });
  });

  test('totals are the exact sums of the lines', () => {
    expect(bill.totals).toEqual({ chargeFen: 3955, discountFen: 1951, amountFen: 2004, amount: '20.04' });
  });

  test('exports as CSV: a header, one row per line and a total row', () => {
    const csv = billCsv(bill);
    const rows = parseCsv(csv);
    expect(rows).toHaveLength(bill.lines.length + 2);
    expect(rows[0]).toEqual(['tenant', 'period', 'currency', 'pool', 'item', 'gpu_model', 'band', 'billing_class', 'quantity', 'unit', 'unit_price_fen', 'ceiling_applied', 'charge_fen', 'discount_bp', 'discount_fen', 'amount_fen', 'amount']);
    expect(rows[6]).toEqual(['beijing', '2026-11', 'CNY', 'intelligent', 'gpu', 'H800', 'flat', 'public-interest', '2.000', 'GPU-hour', '1800.000', 'true', '3600', '5000', '1800', '1800', '18.00']);
    expect(rows.at(-1)).toEqual(['beijing', '2026-11', 'CNY', 'total', '', '', '', '', '', '', '', '', '3955', '', '1951', '2004', '20.04']);
  });
});

describe('rounding half-up to the fen', () => {
  const cpuBill = (cpuMilliSeconds: number) => billFor('beijing', '2026-11-02', [usage('j', { segments: [{ hourStartMs: cst('2026-11-02T12:00'), cpuMilliSeconds }] })], DEFAULT_PRICE_TABLE);

  test.each([
    [224_999, 0], // 0.4999… fen
    [225_000, 1], // 0.5 fen
    [675_000, 2], // 1.5 fen
    [CORE_HOUR, 8],
  ])('%i milli-core-seconds at 8 fen a core-hour cost %i fen', (ms, fen) => {
    expect(cpuBill(ms).totals.amountFen).toBe(fen);
  });
});

describe('time of use', () => {
  const energyAt = (...locals: string[]) => locals.map((local, i) => usage(`j${i}`, { segments: [{ hourStartMs: cst(local), energyMilliWh: KWH }] }));
  const bands = (bill: Bill) => bill.lines.map((l) => [l.band, l.amountFen]);

  test('07:00 local is valley and 08:00 peak; 22:00 is flat and 23:00 still flat until midnight', () => {
    const bill = billFor('beijing', '2026-11-02', energyAt('2026-11-02T07:00', '2026-11-02T08:00', '2026-11-02T10:00', '2026-11-02T11:00', '2026-11-02T23:00'), DEFAULT_PRICE_TABLE);
    expect(bands(bill)).toEqual([
      ['valley', 30],
      ['flat', 120],
      ['peak', 180],
    ]);
  });

  test('the band follows the configured time zone: the same instants in UTC are 23:00 (flat) and 00:00 (valley)', () => {
    const utc = { ...DEFAULT_PRICE_TABLE, timeZoneOffsetMinutes: 0 };
    const bill = billFor('beijing', '2026-11-01', energyAt('2026-11-02T07:00', '2026-11-02T08:00'), utc);
    expect(bill.generatedFor).toBe('2026-11-01T00:00:00+00:00/2026-11-02T00:00:00+00:00');
    expect(bands(bill)).toEqual([['flat', 60]]);
    expect(bands(billFor('beijing', '2026-11-02', energyAt('2026-11-02T07:00', '2026-11-02T08:00'), utc))).toEqual([['valley', 30]]);
  });

  test('the period is local: the hours before local midnight on its first day and from local midnight after it are not billed', () => {
    const bill = billFor('beijing', '2026-11', energyAt('2026-10-31T23:00', '2026-11-01T00:00', '2026-11-30T23:00', '2026-12-01T00:00'), DEFAULT_PRICE_TABLE);
    expect(bill.lines.map((l) => l.quantity.value)).toEqual(['1.000', '1.000']);
  });

  test('the ceiling applies in the bands where the multiplied price exceeds it', () => {
    const gpu = (local: string) => usage('g', { pool: 'intelligent', segments: [{ hourStartMs: cst(local), gpuMilliSeconds: { A800: CORE_HOUR, T4: CORE_HOUR } }] });
    const bill = billFor('beijing', '2026-11-02', [gpu('2026-11-02T03:00'), gpu('2026-11-02T09:00')], DEFAULT_PRICE_TABLE);
    expect(bill.lines.map((l) => [l.gpuModel, l.band, l.unitPriceMilliFen, l.ceilingApplied])).toEqual([
      ['A800', 'valley', 750_000, false],
      ['A800', 'peak', 1_800_000, true],
      ['T4', 'valley', 600_000, false],
      // 1.5 × 12 CNY is exactly the ceiling: nothing to cap.
      ['T4', 'peak', 1_800_000, false],
    ]);
  });
});

describe('any bill (property)', () => {
  test('totals are the sums of the lines, lines add up to the usage summary, and each charge is within half a fen of exact', () => {
    fc.assert(
      fc.property(usagesArb, fc.constantFrom('beijing', 'x,"y"'), (usages, tenant) => {
        const bill = billFor(tenant, '2026-11', usages, DEFAULT_PRICE_TABLE);
        const sum = (f: 'chargeFen' | 'discountFen' | 'amountFen') => bill.lines.reduce((s, l) => s + l[f], 0);
        expect([bill.totals.chargeFen, bill.totals.discountFen, bill.totals.amountFen]).toEqual([sum('chargeFen'), sum('discountFen'), sum('amountFen')]);

        const summary = summarize(usages, { tenant, fromMs: bill.fromMs, toMs: bill.toMs }).total;
        const billed = (item: string, model: string | null = null) => bill.lines.filter((l) => l.item === item && l.gpuModel === model).reduce((s, l) => s + l.quantity.base, 0);
        expect([billed('cpu'), billed('memory'), billed('energy')]).toEqual([summary.cpuMilliSeconds, summary.memMiBSeconds, summary.energyMilliWh]);
        for (const [model, ms] of Object.entries(summary.gpuMilliSeconds)) expect(billed('gpu', model)).toBe(ms);

        for (const l of bill.lines) {
          const per = BigInt(ITEM_UNITS[l.item].basePerUnit * 1000);
          const error = BigInt(l.chargeFen) * per - BigInt(l.quantity.base) * BigInt(l.unitPriceMilliFen);
          expect(2n * (error < 0n ? -error : error) <= per).toBe(true);
          expect(l.amountFen).toBe(l.chargeFen - l.discountFen);
          expect(l.discountFen).toBe(l.billingClass === 'standard' ? 0 : Math.floor((l.chargeFen * l.discountBp + 5000) / 10_000));
        }
        const rows = parseCsv(billCsv(bill));
        expect(rows.map((row) => row.length)).toEqual(Array(bill.lines.length + 2).fill(17));
        expect(rows.slice(1).every((row) => row[0] === tenant)).toBe(true);
      }),
    );
  });

  test('a tenant without use in the period gets an empty bill of zero', () => {
    const bill = billFor('nobody', '2026-11', [usage('j', { segments: [{ hourStartMs: cst('2026-11-02T00:00'), cpuMilliSeconds: HOUR }] })], DEFAULT_PRICE_TABLE);
    expect(bill.lines).toEqual([]);
    expect(bill.totals).toEqual({ chargeFen: 0, discountFen: 0, amountFen: 0, amount: '0.00' });
    expect(billCsv(bill)).toMatch(/^tenant,.*\r\nnobody,2026-11,CNY,total,,,,,,,,,0,,0,0,0.00\r\n$/);
  });
});
