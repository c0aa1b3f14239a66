/**
 * A set of small non-negative integers (node ordinals, slot columns) as a two-level bitset.
 *
 * Add, delete and membership are O(1). Iteration visits members in ascending (or descending) order and
 * skips empty stretches 1,024 ordinals at a time through the summary level, so finding the next member
 * of a sparse set over 50,000 ordinals touches a few dozen words at most. Ascending order is what makes
 * candidate lists independent of insertion history: the index hands out nodes by ordinal, not by when
 * they last changed.
 */
export class OrdinalSet {
  private words: Uint32Array;
  /** Bit w of the summary is set when words[w] is non-zero. */
  private summary: Uint32Array;
  private count = 0;

  constructor(capacityHint = 64) {
    const wordCount = Math.max(1, (capacityHint + 31) >>> 5);
    this.words = new Uint32Array(wordCount);
    this.summary = new Uint32Array((wordCount + 31) >>> 5);
  }

  /** Number of members. */
  get size(): number {
    return this.count;
  }

  /** One past the largest ordinal the set can hold without growing. */
  get capacity(): number {
    return this.words.length << 5;
  }

  has(ordinal: number): boolean {
    const w = ordinal >>> 5;
    return w < this.words.length && (this.words[w] & (1 << (ordinal & 31))) !== 0;
  }

  add(ordinal: number): void {
    const w = ordinal >>> 5;
    if (w >= this.words.length) this.grow(w + 1);
    const bit = 1 << (ordinal & 31);
    const before = this.words[w];
    if (before & bit) return;
    this.words[w] = before | bit;
    this.count++;
    if (before === 0) this.summary[w >>> 5] |= 1 << (w & 31);
  }

  delete(ordinal: number): void {
    const w = ordinal >>> 5;
    if (w >= this.words.length) return;
    const bit = 1 << (ordinal & 31);
    const before = this.words[w];
    if (!(before & bit)) return;
    const after = before & ~bit;
    this.words[w] = after;
    this.count--;
    if (after === 0) this.summary[w >>> 5] &= ~(1 << (w & 31));
  }

  /** The smallest member at or above `from`, or -1. */
  next(from: number): number {
    if (from < 0) from = 0;
    let w = from >>> 5;
    if (w >= this.words.length) return -1;
    const masked = this.words[w] & (~0 << (from & 31));
    if (masked !== 0) return (w << 5) + ctz(masked);
    w = this.nextNonEmptyWord(w + 1);
    return w < 0 ? -1 : (w << 5) + ctz(this.words[w]);
  }

  /** The largest member at or below `from`, or -1. */
  prev(from: number): number {
    if (from < 0) return -1;
    let w = from >>> 5;
    if (w >= this.words.length) {
      w = this.words.length - 1;
      from = (w << 5) + 31;
    }
    const shift = 31 - (from & 31);
    const masked = shift === 0 ? this.words[w] : (this.words[w] << shift) >>> shift;
    if (masked !== 0) return (w << 5) + 31 - Math.clz32(masked);
    w = this.prevNonEmptyWord(w - 1);
    return w < 0 ? -1 : (w << 5) + 31 - Math.clz32(this.words[w]);
  }

  /** Members in ascending order (for tests and diagnostics; hot paths use next()). */
  *[Symbol.iterator](): IterableIterator<number> {
    for (let i = this.next(0); i >= 0; i = this.next(i + 1)) yield i;
  }

  private nextNonEmptyWord(fromWord: number): number {
    let s = fromWord >>> 5;
    if (s >= this.summary.length) return -1;
    let bits = this.summary[s] & (~0 << (fromWord & 31));
    while (bits === 0) {
      if (++s >= this.summary.length) return -1;
      bits = this.summary[s];
    }
    return (s << 5) + ctz(bits);
  }

  private prevNonEmptyWord(fromWord: number): number {
    if (fromWord < 0) return -1;
    let s = fromWord >>> 5;
    const shift = 31 - (fromWord & 31);
    let bits = shift === 0 ? this.summary[s] : (this.summary[s] << shift) >>> shift;
    while (bits === 0) {
      if (--s < 0) return -1;
      bits = this.summary[s];
    }
    return (s << 5) + 31 - Math.clz32(bits);
  }

  private grow(minWords: number): void {
    const wordCount = Math.max(minWords, this.words.length * 2);
    const words = new Uint32Array(wordCount);
    words.set(this.words);
    const summary = new Uint32Array((wordCount + 31) >>> 5);
    summary.set(this.summary);
    this.words = words;
    this.summary = summary;
  }
}

/** Count of trailing zero bits of a non-zero 32-bit word. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}
