let lastMs = 0;
let counter = 0;

/**
 * A new job id: time-ordered (ids sort in submission order, which pagination relies on), lower-case,
 * and a single NATS subject token. 13 characters of milliseconds, a per-millisecond counter and randomness.
 */
export function newJobId(nowMs: number): string {
  if (nowMs === lastMs) counter++;
  else {
    lastMs = nowMs;
    counter = 0;
  }
  const time = nowMs.toString(36).padStart(9, '0');
  const seq = counter.toString(36).padStart(3, '0');
  // Uniqueness comes from time and counter; the random tail only separates restarts within one millisecond.
  const rand = Math.floor(Math.random() * 36 ** 5).toString(36).padStart(5, '0');
  return `j${time}${seq}${rand}`;
}
