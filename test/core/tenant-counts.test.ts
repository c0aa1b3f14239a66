import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TenantCounts } from '../../src/core/node-runtime';

describe('TenantCounts', () => {
  test('keeps the same counts as a plain map, whatever the order tenants come and go in', () => {
    const step = fc.record({ tenant: fc.constantFrom('a', 'b', 'c', 'd'), by: fc.integer({ min: -3, max: 3 }) });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const counts = new TenantCounts();
        const model = new Map<string, number>();
        for (const { tenant, by } of steps) {
          // Counts never go below zero: a node gives back only what it took.
          const next = Math.max(0, (model.get(tenant) ?? 0) + by);
          const change = next - (model.get(tenant) ?? 0);
          counts.add(tenant, change);
          if (next === 0) model.delete(tenant);
          else model.set(tenant, next);
          expect(counts.size).toBe(model.size);
          for (const t of ['a', 'b', 'c', 'd']) {
            expect(counts.get(t)).toBe(model.get(t) ?? 0);
            expect(counts.hasOtherThan(t)).toBe([...model.keys()].some((owner) => owner !== t));
          }
        }
      }),
    );
  });
});
