import { loadSeries, shareFromCarbon } from '../../src/green';

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
 * A green signal from a CSV file, read by `loadSeries` (src/green/series.ts): rows `time,share` with ISO
 * date-times (a recorded series, replayed in a loop when the clock is outside it) or `HH:MM` (a daily profile),
 * share 0..1 or a percentage; or a carbon-intensity file (`Time,Carbon Intensity`), turned into a share by
 * `shareFromCarbon`. The value in force is the last row at or before the time.
 */
export function fileGreen(path: string): GreenSource {
  const series = loadSeries(path);
  const carbon = series.kind === 'carbon';
  const notes = [`${series.points.length} points`, ...(series.daily ? ['daily profile'] : []), ...(carbon ? ['carbon intensity as share'] : [])];
  return {
    describe: () => `${path} (${notes.join(', ')})`,
    shareAt: carbon ? (nowMs) => shareFromCarbon(series.valueAt(nowMs)) : series.valueAt,
  };
}
