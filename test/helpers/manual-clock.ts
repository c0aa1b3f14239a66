import type { Clock, Timer } from '../../src/time';

interface Pending {
  atMs: number;
  fn: () => void;
  everyMs?: number;
  cancelled: boolean;
}

/**
 * A clock a test moves by hand: `advanceTo` sets the time and fires the timers due by then, in time order.
 * An interval fires at most once per advance (it stands for "the sweep ran since"), then is due again a
 * period after the new time, so a jump of hours does not fire it thousands of times.
 */
export class ManualClock implements Clock {
  private readonly timers: Pending[] = [];

  constructor(private nowMs: number) {}

  now(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add({ atMs: this.nowMs + Math.max(0, ms), fn, cancelled: false });
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.add({ atMs: this.nowMs + ms, fn, everyMs: ms, cancelled: false });
  }

  /** Moves time forward to `atMs` (never back) and fires what is due. */
  advanceTo(atMs: number): void {
    this.set(atMs);
    this.fire();
  }

  /** Moves time forward without firing timers (a test first delivers what happens at that time). */
  set(atMs: number): void {
    if (atMs < this.nowMs) throw new Error(`the manual clock does not go back: ${atMs} < ${this.nowMs}`);
    this.nowMs = atMs;
  }

  /** Timers set and not yet fired or cancelled. */
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Fires the timers due by now. */
  fire(): void {
    const atMs = this.nowMs;
    const due = this.timers.filter((t) => !t.cancelled && t.atMs <= atMs).sort((a, b) => a.atMs - b.atMs);
    for (const t of due) {
      if (t.cancelled) continue;
      if (t.everyMs === undefined) t.cancelled = true;
      else t.atMs = atMs + t.everyMs;
      t.fn();
    }
    for (let i = this.timers.length - 1; i >= 0; i--) if (this.timers[i].cancelled) this.timers.splice(i, 1);
  }

  private add(t: Pending): Timer {
    this.timers.push(t);
    return { cancel: () => (t.cancelled = true) };
  }
}
