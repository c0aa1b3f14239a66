import * as hdr from 'hdr-histogram-js';

/**
 * The load engine's latency histograms (hdr-histogram-js): microseconds from 1 µs to 10 minutes at three
 * significant digits. Every load tool records with these settings, so their percentiles compare.
 */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Records the time from `sentNs` (process.hrtime) to `doneNs`, in microseconds (at least 1). */
export function recordSince(histogram: hdr.Histogram, sentNs: bigint, doneNs = process.hrtime.bigint()): void {
  histogram.recordValue(Math.max(1, Number((doneNs - sentNs) / 1000n)));
}

/** A percentile in milliseconds, to two decimals. */
export function percentileMs(histogram: hdr.Histogram, percentile: number): number {
  return round2(histogram.getValueAtPercentile(percentile) / 1000);
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;

export type { Histogram } from 'hdr-histogram-js';
