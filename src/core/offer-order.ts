import type { Pool } from '../protocol';
import type { SchedJob } from './model';
import type { JobComparator, JobQueue } from './queue';

/** Where a cycle takes its next job from: a tenant's active queue in a pool, or a waiting group being retried. */
export interface OfferSource {
  readonly pool: Pool;
  readonly queue: JobQueue;
}

/**
 * The order in which a cycle offers heads of many queues: at every step the best head by `across`. With an
 * order that moves as jobs are placed (fair share) every head is compared at every step; with a fixed one
 * (submit order), a heap of heads does it in O(log sources), which a deep queue of many users needs.
 */
export interface OfferOrder<S extends OfferSource> {
  /** The best head among the sources still offered, of a pool not stopped; undefined when none is left. */
  next(stopped: ReadonlySet<Pool>): { source: S; head: SchedJob } | undefined;
  /** The source given by `next` stays a candidate (its head may have changed). */
  keep(source: S): void;
  /** The source is done for this cycle. */
  drop(source: S): void;
  /** The sources still offered (for the ones a budget cut off). */
  remaining(): S[];
}

/** A comparator that never changes within a cycle, so heads may be kept in a heap. */
export type FixedComparator = JobComparator & { readonly fixed: true };

/** Marks a comparator as fixed (submit order, priority then submit time). */
export function fixedOrder(compare: JobComparator): FixedComparator {
  return Object.assign(compare, { fixed: true as const });
}

/** The order for `across`: a heap when it is fixed, a scan of every head otherwise. */
export function offerOrder<S extends OfferSource>(across: JobComparator, sources: S[]): OfferOrder<S> {
  return (across as Partial<FixedComparator>).fixed ? new HeapOrder(across, sources) : new ScanOrder(across, sources);
}

class ScanOrder<S extends OfferSource> implements OfferOrder<S> {
  constructor(
    private readonly across: JobComparator,
    private readonly sources: S[],
  ) {}

  next(stopped: ReadonlySet<Pool>): { source: S; head: SchedJob } | undefined {
    let best: { source: S; head: SchedJob } | undefined;
    for (const source of this.sources) {
      if (stopped.has(source.pool)) continue;
      const head = source.queue.peek();
      if (head && (!best || this.across(head, best.head) < 0)) best = { source, head };
    }
    return best;
  }

  keep(): void {}

  drop(source: S): void {
    const i = this.sources.indexOf(source);
    if (i >= 0) this.sources.splice(i, 1);
  }

  remaining(): S[] {
    return this.sources;
  }
}

/**
 * Heads in binary heaps, one per pool. A source leaves its heap when `next` gives it out and comes back on
 * `keep` with its head then; a source whose head changed while it sat in the heap (a job joined its waiting
 * group) is put back under its new head when it comes up, so the order stays exact. A stopped pool's heap is
 * simply not looked at again: a strict pool that stops at its first job costs one pop, not a pass over every
 * other tenant's queue.
 */
class HeapOrder<S extends OfferSource> implements OfferOrder<S> {
  private readonly heaps = new Map<Pool, HeadHeap<S>>();
  private readonly out = new Set<S>();

  constructor(
    private readonly across: JobComparator,
    sources: S[],
  ) {
    const byPool = new Map<Pool, { source: S; head: SchedJob }[]>();
    for (const source of sources) {
      const head = source.queue.peek();
      if (!head) continue;
      let entries = byPool.get(source.pool);
      if (!entries) byPool.set(source.pool, (entries = []));
      entries.push({ source, head });
    }
    for (const [pool, entries] of byPool) this.heaps.set(pool, new HeadHeap(across, entries));
  }

  next(stopped: ReadonlySet<Pool>): { source: S; head: SchedJob } | undefined {
    for (;;) {
      let best: HeadHeap<S> | undefined;
      for (const [pool, heap] of this.heaps) {
        if (heap.size === 0 || stopped.has(pool)) continue;
        if (!best || this.across(heap.top.head, best.top.head) < 0) best = heap;
      }
      if (!best) return undefined;
      const top = best.pop();
      const head = top.source.queue.peek();
      if (!head) continue;
      if (head !== top.head) {
        best.push({ source: top.source, head });
        continue;
      }
      this.out.add(top.source);
      return top;
    }
  }

  keep(source: S): void {
    if (!this.out.delete(source)) return;
    const head = source.queue.peek();
    if (!head) return;
    const heap = this.heaps.get(source.pool);
    if (heap) heap.push({ source, head });
    else this.heaps.set(source.pool, new HeadHeap(this.across, [{ source, head }]));
  }

  drop(source: S): void {
    this.out.delete(source);
  }

  remaining(): S[] {
    return [...[...this.heaps.values()].flatMap((h) => h.sources()), ...this.out];
  }
}

/** A binary min-heap of queue heads (built in O(n)). */
class HeadHeap<S extends OfferSource> {
  constructor(
    private readonly across: JobComparator,
    private readonly heap: { source: S; head: SchedJob }[],
  ) {
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  get size(): number {
    return this.heap.length;
  }

  get top(): { source: S; head: SchedJob } {
    return this.heap[0];
  }

  sources(): S[] {
    return this.heap.map((e) => e.source);
  }

  push(entry: { source: S; head: SchedJob }): void {
    this.heap.push(entry);
    this.up(this.heap.length - 1);
  }

  pop(): { source: S; head: SchedJob } {
    const top = this.heap[0];
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    return this.across(this.heap[i].head, this.heap[j].head) < 0;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      [this.heap[i], this.heap[parent]] = [this.heap[parent], this.heap[i]];
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.heap.length) break;
      const r = l + 1;
      const c = r < this.heap.length && this.less(r, l) ? r : l;
      if (!this.less(c, i)) break;
      [this.heap[i], this.heap[c]] = [this.heap[c], this.heap[i]];
      i = c;
    }
  }
}
