import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decimal, divideHalfUp, exactNumber, periodRange, summarize, type UsageFigures } from '../../src/billing';
import { HOUR, cst, usage, usagesArb } from './fixtures';

const INTEGER_FIELDS = ['cpuMilliSeconds', 'memMiBSeconds', 'energyMilliWh', 'greenMilliWh', 'carbonMg', 'jobs'] as const;

/** The integer figures of several breakdowns added up, GPU milli-seconds per model. */
function sumOf(parts: UsageFigures[]) {
  const gpu: Record<string, number> = {};
  for (const p of parts) for (const [model, ms] of Object.entries(p.gpuMilliSeconds)) gpu[model] = (gpu[model] ?? 0) + ms;
  return { ...Object.fromEntries(INTEGER_FIELDS.map((f) => [f, parts.reduce((s, p) => s + p[f], 0)])), gpuMilliSeconds: gpu };
}
const integersOf = (f: UsageFigures) => ({ ...Object.fromEntries(INTEGER_FIELDS.map((k) => [k, f[k]])), gpuMilliSeconds: f.gpuMilliSeconds });

describe('summarize', () => {
  test('totals equal the sums of every breakdown exactly (property)', () => {
    const window = fc.record({ fromMs: fc.option(fc.integer({ min: -20, max: 20 }), { nil: undefined }), toMs: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }) });
    fc.assert(
      fc.property(usagesArb, window, (usages, w) => {
        const at = (h: number | undefined) => (h === undefined ? undefined : cst('2026-11-01T00:00') + h * HOUR);
        const s = summarize(usages, { fromMs: at(w.fromMs), toMs: at(w.toMs) });
        const total = integersOf(s.total);
        expect(sumOf(Object.values(s.byTenant))).toEqual(total);
        expect(sumOf(Object.values(s.byPool))).toEqual(total);
        expect(sumOf(Object.values(s.byJob))).toEqual(total);
        expect(Object.fromEntries(Object.entries(s.byGpuModel).map(([m, g]) => [m, g.gpuMilliSeconds]))).toEqual(s.total.gpuMilliSeconds);
      }),
    );
  });

  test('selects segments by the start of their hour in [fromMs, toMs) and by tenant, pool and job', () => {
    const t0 = cst('2026-11-01T00:00');
    const usages = [
      usage('j1', { segments: [{ hourStartMs: t0 - HOUR, cpuMilliSeconds: 1 }, { hourStartMs: t0, cpuMilliSeconds: 10 }, { hourStartMs: t0 + HOUR, cpuMilliSeconds: 100 }] }),
      usage('j2', { tenant: 'shanghai-meteo', pool: 'super', segments: [{ hourStartMs: t0, cpuMilliSeconds: 1000 }] }),
    ];
    expect(summarize(usages, { fromMs: t0, toMs: t0 + HOUR }).total.cpuMilliSeconds).toBe(1010);
    expect(summarize(usages, { toMs: t0 + HOUR }).total.cpuMilliSeconds).toBe(1011);
    expect(summarize(usages, { tenant: 'beijing' }).total.cpuMilliSeconds).toBe(111);
    expect(summarize(usages, { pool: 'super' }).total).toMatchObject({ cpuMilliSeconds: 1000, jobs: 1 });
    expect(summarize(usages, { jobId: 'j1', fromMs: t0 + HOUR }).total).toMatchObject({ cpuMilliSeconds: 100, jobs: 1 });
    expect(summarize(usages, { jobId: 'j3' }).total.jobs).toBe(0);
  });

  test('counts distinct jobs, and converts to display units from the integers', () => {
    const seg = { hourStartMs: 0, cpuMilliSeconds: 5_400_000, gpuMilliSeconds: { A800: 1_800_000 }, memMiBSeconds: 1024 * 3600 * 2, energyMilliWh: 2_500_000, greenMilliWh: 1_000_000, carbonMg: 750_000 };
    const usages = [usage('j1', { segments: [seg] }), { ...usage('j1', { segments: [seg] }), taskIndex: 1 }];
    const s = summarize(usages);
    expect(s.total).toEqual({
      jobs: 1,
      cpuMilliSeconds: 10_800_000,
      gpuMilliSeconds: { A800: 3_600_000 },
      memMiBSeconds: 1024 * 3600 * 4,
      energyMilliWh: 5_000_000,
      greenMilliWh: 2_000_000,
      carbonMg: 1_500_000,
      coreHours: 3,
      gpuHours: { A800: 1 },
      memGiBHours: 4,
      kWh: 5,
      greenKWh: 2,
      greenShare: 0.4,
      carbonKg: 1.5,
    });
    expect(s.byGpuModel).toEqual({ A800: { jobs: 1, gpuMilliSeconds: 3_600_000, gpuHours: 1 } });
    expect(summarize([]).total.greenShare).toBeNull();
  });

  test('tenant names that are object properties are only names', () => {
    const s = summarize([usage('j1', { tenant: '__proto__', segments: [{ cpuMilliSeconds: 7 }] })]);
    expect(Object.hasOwn(s.byTenant, '__proto__')).toBe(true);
    expect(s.byTenant['__proto__'].cpuMilliSeconds).toBe(7);
  });
});

describe('periods in local time', () => {
  test('a month runs from local midnight of its first day to local midnight of the next month', () => {
    expect(periodRange('2026-11')).toEqual({
      period: '2026-11',
      fromMs: Date.parse('2026-10-31T16:00:00Z'),
      toMs: Date.parse('2026-11-30T16:00:00Z'),
      timeZoneOffsetMinutes: 480,
      interval: '2026-11-01T00:00:00+08:00/2026-12-01T00:00:00+08:00',
    });
    expect(periodRange('2026-12', 0)).toMatchObject({ fromMs: Date.parse('2026-12-01T00:00:00Z'), toMs: Date.parse('2027-01-01T00:00:00Z'), interval: '2026-12-01T00:00:00+00:00/2027-01-01T00:00:00+00:00' });
    expect(periodRange('2026-11', -300).interval).toBe('2026-11-01T00:00:00-05:00/2026-12-01T00:00:00-05:00');
  });

  test('a day, including the last of February and a leap day', () => {
    expect(periodRange('2026-02-28')).toMatchObject({ fromMs: cst('2026-02-28T00:00'), toMs: cst('2026-03-01T00:00') });
    expect(periodRange('2028-02-29').toMs - periodRange('2028-02-29').fromMs).toBe(24 * HOUR);
  });

  test.each(['2026-13', '2026-1', '2026-02-30', '2027-02-29', '2026-11-01T00', 'november'])('%s is not a period', (period) => {
    expect(() => periodRange(period)).toThrow(/^period /);
  });
});

describe('integer arithmetic', () => {
  test('half-up rounding and exact decimals', () => {
    expect([divideHalfUp(4n, 10n), divideHalfUp(5n, 10n), divideHalfUp(15n, 10n), divideHalfUp(0n, 3n)]).toEqual([0n, 1n, 2n, 0n]);
    expect(decimal(12_345, 100, 2)).toBe('123.45');
    expect(decimal(5, 100, 2)).toBe('0.05');
    expect(decimal(1_350_000, 3_600_000, 3)).toBe('0.375');
    expect(decimal(1, 3_600_000, 3)).toBe('0.000');
    expect(decimal(1_800_000, 3_600_000, 0)).toBe('1');
    expect(decimal(2n ** 70n, 1, 0)).toBe('1180591620717411303424');
  });

  test('a sum beyond the exact range of a number throws instead of rounding', () => {
    expect(exactNumber(2n ** 53n - 1n, 'x')).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => exactNumber(2n ** 53n, 'the total')).toThrow(/the total is 9007199254740992/);
  });
});
