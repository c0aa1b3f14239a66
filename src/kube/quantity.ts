/**
 * Kubernetes resource quantities (`500m`, `2`, `16Gi`, `1.5G`, `100Ki`, `1e3`), as the API server writes
 * them in `status.allocatable` and container requests. client-node's `quantityToScalar` refuses decimals
 * with a suffix (`1.5G`), so the bridge has its own: exact enough for integers below 2^53, which every
 * quantity the scheduler can hold is (see LIMITS in src/protocol/resources.ts).
 */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

/** The value of a quantity in its base unit (cores, bytes, devices); throws on a malformed quantity. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const m = QUANTITY.exec(quantity.trim());
  if (!m) throw new Error(`not a Kubernetes quantity: "${quantity}"`);
  const [, number, suffix, exponent] = m;
  const value = Number(number);
  if (exponent !== undefined) return value * 10 ** Number(exponent);
  const factor = suffix === undefined ? 1 : (BINARY[suffix] ?? DECIMAL[suffix]);
  return value * factor;
}

/**
 * A CPU quantity in millicores, rounded up as Kubernetes does (`0.1` = 100, `1u` = 1): a request is never
 * rounded below what was asked.
 */
export function cpuMillisOf(quantity: string | number | undefined): number {
  if (quantity === undefined) return 0;
  return roundUp(parseQuantity(quantity) * 1000);
}

/** A memory (or any count) quantity as a whole number, rounded up (`1.5Ki` = 1536, `100m` bytes = 1). */
export function wholeUnitsOf(quantity: string | number | undefined): number {
  if (quantity === undefined) return 0;
  return roundUp(parseQuantity(quantity));
}

/** Rounds up, forgiving the float noise of decimal suffixes (1.1 × 1e9 is 1100000000.0000002). */
function roundUp(value: number): number {
  const nearest = Math.round(value);
  return Math.abs(value - nearest) < 1e-6 * Math.max(1, Math.abs(value)) ? nearest : Math.ceil(value);
}
