import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Pool } from '../../src/protocol';
import type { SchedJob } from '../../src/core/model';
import { fixedOrder, offerOrder, type OfferSource } from '../../src/core/offer-order';
import { JobQueue, byPriorityThenSubmitTime } from '../../src/core/queue';

const POOLS: Pool[] = ['general', 'intelligent', 'super'];

/** The order a cycle offers heads in, driven by a script of keep/drop decisions and pools that stop. */
function drive(fixed: boolean, layout: { pool: number; jobs: { priority: number; at: number }[] }[], script: { action: 'keep-pop' | 'keep' | 'drop'; stop: boolean }[]): string[] {
  let n = 0;
  const sources: OfferSource[] = layout.map((l) => {
    const queue = new JobQueue(byPriorityThenSubmitTime);
    for (const j of l.jobs) queue.push({ id: `j${n++}`, pool: POOLS[l.pool], priority: j.priority, submittedAtMs: j.at } as SchedJob);
    return { pool: POOLS[l.pool], queue };
  });
  const compare = fixed ? fixedOrder((a: SchedJob, b: SchedJob) => byPriorityThenSubmitTime(a, b) || a.id.localeCompare(b.id)) : (a: SchedJob, b: SchedJob) => byPriorityThenSubmitTime(a, b) || a.id.localeCompare(b.id);
  const order = offerOrder(compare, sources);
  const stopped = new Set<Pool>();
  const seen: string[] = [];
  for (const step of script) {
    const next = order.next(stopped);
    if (!next) break;
    seen.push(next.head.id);
    if (step.action === 'drop') order.drop(next.source);
    else {
      if (step.action === 'keep-pop') next.source.queue.pop();
      order.keep(next.source);
    }
    if (step.stop) stopped.add(next.source.pool);
  }
  seen.push(`remaining:${order.remaining().filter((s) => s.queue.size > 0).length}`);
  return seen;
}

describe('offer order', () => {
  test('the heap of heads (fixed order) offers exactly what a scan of every head offers, with pools stopping (property)', () => {
    const job = fc.record({ priority: fc.integer({ min: 0, max: 3 }), at: fc.integer({ min: 0, max: 50 }) });
    fc.assert(
      fc.property(
        fc.array(fc.record({ pool: fc.integer({ min: 0, max: 2 }), jobs: fc.array(job, { maxLength: 12 }) }), { maxLength: 40 }),
        fc.array(fc.record({ action: fc.constantFrom('keep-pop' as const, 'keep' as const, 'drop' as const), stop: fc.boolean() }), { maxLength: 200 }),
        (layout, script) => {
          // Keeping a source without taking its head offers the same head again: the scan and the heap agree on that too.
          const safe = script.map((s, i) => (s.action === 'keep' && i % 2 === 0 ? { ...s, action: 'keep-pop' as const } : s));
          expect(drive(true, layout, safe)).toEqual(drive(false, layout, safe));
        },
      ),
      { numRuns: 300 },
    );
  });
});
