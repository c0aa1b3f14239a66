import { expect, test } from 'vitest';
import { cpuMillisOf, parseQuantity, wholeUnitsOf } from '../../src/kube/quantity';

const cases = [
  { q: '500m', cpuMillis: 500, units: 1 },
  { q: '2', cpuMillis: 2000, units: 2 },
  { q: '0.1', cpuMillis: 100, units: 1 },
  { q: '1.5', cpuMillis: 1500, units: 2 },
  { q: '100u', cpuMillis: 1, units: 1 },
  { q: '250000n', cpuMillis: 1, units: 1 },
  { q: '16Gi', cpuMillis: 16 * 1024 ** 3 * 1000, units: 16 * 1024 ** 3 },
  { q: '1.5G', cpuMillis: 1.5e12, units: 1_500_000_000 },
  { q: '1.1G', cpuMillis: 1.1e12, units: 1_100_000_000 },
  { q: '100Ki', cpuMillis: 102_400_000, units: 102_400 },
  { q: '1.5Ki', cpuMillis: 1_536_000, units: 1536 },
  { q: '129M', cpuMillis: 129e9, units: 129_000_000 },
  { q: '123Mi', cpuMillis: 123 * 1024 ** 2 * 1000, units: 123 * 1024 ** 2 },
  { q: '1e3', cpuMillis: 1_000_000, units: 1000 },
  { q: '12E-1', cpuMillis: 1200, units: 2 },
  { q: '1Ti', cpuMillis: 1024 ** 4 * 1000, units: 1024 ** 4 },
  { q: '0', cpuMillis: 0, units: 0 },
] as const;

for (const c of cases) {
  test(`${c.q} is ${c.cpuMillis} millicores, ${c.units} whole units (rounded up)`, () => {
    expect(cpuMillisOf(c.q)).toBe(c.cpuMillis);
    expect(wholeUnitsOf(c.q)).toBe(c.units);
  });
}

test('numbers pass through; absent quantities are zero', () => {
  expect(parseQuantity(3)).toBe(3);
  expect(cpuMillisOf(undefined)).toBe(0);
});

for (const bad of ['', 'Gi', '1.5X', '1 Gi', 'abc', '--1', '1Gii']) {
  test(`"${bad}" is refused with a clear error`, () => expect(() => parseQuantity(bad)).toThrow(`not a Kubernetes quantity: "${bad}"`));
}
