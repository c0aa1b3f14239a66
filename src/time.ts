/** Lengths of time in milliseconds, named once. */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** The hour of the day (0–23, UTC) of a time in milliseconds since the epoch (or since a simulation's start). */
export function hourOfDay(ms: number): number {
  return ((Math.floor(ms / HOUR_MS) % 24) + 24) % 24;
}

/** The next whole hour after `ms`. */
export function nextHourMs(ms: number): number {
  return (Math.floor(ms / HOUR_MS) + 1) * HOUR_MS;
}

/** A timer that can be cancelled. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as a service sees it: the current time and timers on the same clock. The system clock in
 * production; a test drives a manual one, so time-based behaviour is tested without waiting on the wall clock.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`. Timers never keep the process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms`. */
  setInterval(fn: () => void, ms: number): Timer;
}

/** The system clock: Date.now and Node's timers, unref'd. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

/**
 * For long loops on the event loop (a rebuild restoring a hundred thousand jobs): the returned function
 * gives timers and I/O a turn (a lease renewal, a health probe) once `sliceMs` of work has passed since
 * the last turn, and costs a resolved promise otherwise. `await pace()` inside the loop.
 */
export function pacer(sliceMs = 10): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < sliceMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}
