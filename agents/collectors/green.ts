import { readFileSync } from 'node:fs';

/** The share of green electricity at a time. */
export interface GreenSource {
  shareAt(nowMs: number): number;
  describe(): string;
}

/** The same share at all times. */
export function constantGreen(share: number): GreenSource {
  return { shareAt: () => share, describe: () => `constant ${share}` };
}

/**
 * A renewable-share time series from a CSV file with a header and rows `time,share`:
 * - `time` an ISO date-time (a recorded series, replayed in a loop when the clock is outside it) or
 *   `HH:MM` (a daily profile);
 * - `share` 0..1, or a percentage when above 1.
 * The value in force is the last row at or before the time.
 */
export function fileGreen(path: string): GreenSource {
  const rows = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .slice(1)
    .map((line) => line.split(','))
    .filter((cols) => cols.length >= 2 && cols[0].trim() !== '');
  const points = rows.map(([time, share]) => {
    const value = Number(share);
    if (!Number.isFinite(value) || value < 0) throw new Error(`${path}: bad share ${share}`);
    return { time: time.trim(), share: value > 1 ? Math.min(1, value / 100) : value };
  });
  if (points.length === 0) throw new Error(`${path}: no rows`);
  const daily = /^\d{1,2}:\d{2}$/.test(points[0].time);
  const series = points
    .map((p) => {
      if (daily) {
        const [h, m] = p.time.split(':').map(Number);
        return { atMs: (h * 60 + m) * 60_000, share: p.share };
      }
      const atMs = Date.parse(p.time.includes('T') || p.time.endsWith('Z') ? p.time : `${p.time.replace(' ', 'T')}Z`);
      if (!Number.isFinite(atMs)) throw new Error(`${path}: bad time ${p.time}`);
      return { atMs, share: p.share };
    })
    .sort((a, b) => a.atMs - b.atMs);
  const first = series[0].atMs;
  const step = series.length > 1 ? series[1].atMs - first : 1;
  const span = daily ? 24 * 3600_000 : series[series.length - 1].atMs - first + step;
  return {
    describe: () => `${path} (${series.length} points${daily ? ', daily profile' : ''})`,
    shareAt(nowMs: number) {
      const t = daily ? ((nowMs % span) + span) % span : first + ((((nowMs - first) % span) + span) % span);
      let lo = 0;
      let hi = series.length - 1;
      if (t < series[0].atMs) return series[series.length - 1].share;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (series[mid].atMs <= t) lo = mid;
        else hi = mid - 1;
      }
      return series[lo].share;
    },
  };
}
