import { byEndTime, type ExpectedEnd } from './backfill';

/** Entries per chunk: inserts and removals move at most this many, whatever the total. */
const CHUNK = 256;

/**
 * Running jobs' expected ends in end order (byEndTime), for EASY reservations: a list of sorted chunks, so
 * a start or an end costs O(log n + CHUNK) where one sorted array would move O(n) entries — tens of
 * thousands in a large cluster, at every start and end.
 */
export class SortedEnds implements Iterable<ExpectedEnd> {
  private readonly chunks: ExpectedEnd[][] = [];

  get size(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  clear(): void {
    this.chunks.length = 0;
  }

  insert(e: ExpectedEnd): void {
    if (this.chunks.length === 0) {
      this.chunks.push([e]);
      return;
    }
    const ci = Math.min(this.chunkFor(e), this.chunks.length - 1);
    const chunk = this.chunks[ci];
    chunk.splice(lowerBound(chunk, e), 0, e);
    if (chunk.length > 2 * CHUNK) this.chunks.splice(ci, 1, chunk.slice(0, CHUNK), chunk.slice(CHUNK));
  }

  /** Removes `e` (the same object that was inserted); false when it is not there. */
  remove(e: ExpectedEnd): boolean {
    const ci = this.chunkFor(e);
    const chunk = this.chunks[ci];
    if (!chunk) return false;
    const i = lowerBound(chunk, e);
    if (chunk[i] !== e) return false;
    chunk.splice(i, 1);
    if (chunk.length === 0) this.chunks.splice(ci, 1);
    return true;
  }

  *[Symbol.iterator](): Iterator<ExpectedEnd> {
    for (const chunk of this.chunks) yield* chunk;
  }

  /** The first chunk whose last entry is not before `e` (chunks.length when there is none). */
  private chunkFor(e: ExpectedEnd): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const chunk = this.chunks[mid];
      if (byEndTime(chunk[chunk.length - 1], e) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function lowerBound(list: readonly ExpectedEnd[], e: ExpectedEnd): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byEndTime(list[mid], e) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
