import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { DEFAULT_PRICE_TABLE, bandOf, loadPriceTable, parsePriceTable, unitPrice } from '../../src/billing';
import { cst } from './fixtures';

const yamlText = readFileSync('configs/prices.yaml', 'utf8');

/** The example price file with one change applied to its parsed form, as YAML again. */
function edited(change: (doc: Record<string, any>) => void): string {
  const doc = parse(yamlText);
  change(doc);
  return stringify(doc);
}

describe('the price file', () => {
  test('configs/prices.yaml is valid and is the default price table', () => {
    expect(loadPriceTable('configs/prices.yaml')).toEqual(DEFAULT_PRICE_TABLE);
  });

  test.each([
    ['a missing pool', (d: any) => delete d.pools.super, /^bad\.yaml: pools\.super: /],
    ['a negative price', (d: any) => (d.pools.general.pricesMilliFen.cpu = -1), /pools\.general\.pricesMilliFen\.cpu: .*>=0/],
    ['a fractional price', (d: any) => (d.pools.general.pricesMilliFen.energy = 60.5), /pools\.general\.pricesMilliFen\.energy: .*int/i],
    ['GPU prices without a default', (d: any) => delete d.pools.intelligent.pricesMilliFen.gpu.default, /pools\.intelligent\.pricesMilliFen\.gpu\.default: /],
    ['a discount over 100%', (d: any) => (d.pools.super.publicInterestDiscountBp = 10_001), /pools\.super\.publicInterestDiscountBp: /],
    ['an unknown field', (d: any) => (d.pools.general.pricePerCore = 1), /pools\.general: .*pricePerCore/],
    ['an unknown time-of-use item', (d: any) => (d.pools.general.timeOfUse = ['disk']), /pools\.general\.timeOfUse\.0: /],
    ['a currency other than CNY', (d: any) => (d.currency = 'USD'), /currency: /],
    ['a half-hour time zone', (d: any) => (d.timeZoneOffsetMinutes = 330), /timeZoneOffsetMinutes: must be a whole number of hours/],
    ['overlapping bands', (d: any) => (d.timeOfUse[0].hours = [[0, 9]]), /timeOfUse\.2\.hours: hour 8:00 is in both valley and peak/],
    ['hours in no band', (d: any) => (d.timeOfUse[2].hours = [[8, 11]]), /timeOfUse: hours 18:00, 19:00, 20:00, 21:00 are in no band/],
    ['an empty hour range', (d: any) => (d.timeOfUse[0].hours = [[8, 8]]), /timeOfUse\.0\.hours\.0: must be \[start, end\) with start < end/],
    ['a band named twice', (d: any) => (d.timeOfUse[1].name = 'valley'), /timeOfUse\.1\.name: band valley is defined twice/],
  ])('%s is refused with an error naming the file and the field', (_, change, message) => {
    expect(() => parsePriceTable(edited(change), 'bad.yaml')).toThrow(message);
  });

  test('a file that is not YAML is refused naming the file', () => {
    expect(() => parsePriceTable('pools: [unclosed', 'broken.yaml')).toThrow(/^broken\.yaml: not valid YAML: /);
  });

  test('optional fields take their defaults: flat time of use, no ceilings, no discount, free memory', () => {
    const table = parsePriceTable(
      edited((d) => {
        delete d.timeOfUse;
        delete d.timeZoneOffsetMinutes;
        for (const pool of Object.values<Record<string, unknown>>(d.pools)) {
          for (const key of ['ceilingsMilliFen', 'timeOfUse', 'publicInterestDiscountBp']) delete pool[key];
          delete (pool.pricesMilliFen as Record<string, unknown>).memory;
        }
      }),
      'minimal.yaml',
    );
    expect(table.timeZoneOffsetMinutes).toBe(480);
    expect(table.timeOfUse).toEqual([{ name: 'flat', multiplierBp: 10_000, hours: [[0, 24]] }]);
    expect(table.pools.general).toMatchObject({ ceilingsMilliFen: {}, timeOfUse: ['energy'], publicInterestDiscountBp: 0, pricesMilliFen: { memory: 0 } });
  });
});

describe('unit prices', () => {
  const intelligent = DEFAULT_PRICE_TABLE.pools.intelligent;
  const band = (name: string) => DEFAULT_PRICE_TABLE.timeOfUse.find((b) => b.name === name)!;

  test('the time-of-use multiplier is rounded half-up to the milli-fen', () => {
    const prices = { ...intelligent, pricesMilliFen: { ...intelligent.pricesMilliFen, energy: 8001 } };
    expect(unitPrice(prices, 'energy', null, band('valley'))).toEqual({ listMilliFen: 8001, multiplierBp: 5000, milliFen: 4001, ceilingApplied: false });
    expect(unitPrice(prices, 'energy', null, null)).toMatchObject({ milliFen: 8001, multiplierBp: 10_000 });
  });

  test('the ceiling caps the price after the multiplier', () => {
    expect(unitPrice(intelligent, 'gpu', 'A800', band('valley'))).toMatchObject({ milliFen: 750_000, ceilingApplied: false });
    expect(unitPrice(intelligent, 'gpu', 'A800', band('flat'))).toMatchObject({ milliFen: 1_500_000, ceilingApplied: false });
    expect(unitPrice(intelligent, 'gpu', 'A800', band('peak'))).toMatchObject({ milliFen: 1_800_000, ceilingApplied: true });
  });

  test('GPU models not in the table, or named like object properties, take the default', () => {
    expect(unitPrice(intelligent, 'gpu', 'T4', null).listMilliFen).toBe(1_200_000);
    expect(unitPrice(intelligent, 'gpu', 'constructor', null).listMilliFen).toBe(1_200_000);
  });

  test('the band of an hour is its local hour of day; items priced flat have none', () => {
    expect(bandOf(DEFAULT_PRICE_TABLE, 'general', 'energy', cst('2026-11-02T07:00'))?.name).toBe('valley');
    expect(bandOf(DEFAULT_PRICE_TABLE, 'general', 'energy', cst('2026-11-02T08:00'))?.name).toBe('peak');
    expect(bandOf(DEFAULT_PRICE_TABLE, 'general', 'energy', cst('2026-11-02T23:00'))?.name).toBe('flat');
    expect(bandOf(DEFAULT_PRICE_TABLE, 'general', 'cpu', cst('2026-11-02T08:00'))).toBeNull();
    expect(bandOf({ ...DEFAULT_PRICE_TABLE, timeZoneOffsetMinutes: 0 }, 'general', 'energy', cst('2026-11-02T08:00'))?.name).toBe('valley');
  });
});
