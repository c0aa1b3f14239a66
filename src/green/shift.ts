import { gridFrom, lastIndexAtOrBefore, valueAtOrBefore, type Point } from './series';

export { latestStartOf, type Deferral } from '../core/deadline';

/*
 * Temporal shifting after "Let's Wait Awhile" (Wiesner et al., Middleware 2021): a deferrable job starts
 * at the time within its window whose forecast over the job's run is best, e.g. the lowest carbon intensity.
 */

/** A deferrable job to place in time. */
export interface PlanRequest {
  nowMs: number;
  durationMs: number;
  /** The job may start no later than this (see {@link latestStartOf}). */
  latestStartMs: number;
  /** A step function sorted by time, as a forecaster returns: each value holds until the next point,
   *  the last one for ever (values missing at the end are the last known), the first one also before it. */
  forecast: readonly Point[];
  /** Candidate starts: now and the multiples of `stepMs` since the Unix epoch (30 min: :00 and :30) up to
   *  the latest start, where a signal on that grid changes. */
  stepMs: number;
  /** Seek the lowest mean (carbon intensity), the default, or the highest (green share) when false. */
  minimise?: boolean;
  /**
   * What a start later than now must win by, in the forecast's unit, given how far ahead it is: the
   * forecast's recent error at that horizon, so a job waits only for a saving the forecast can tell from its
   * noise. Candidates are ranked by their gain less this margin; none: 0.
   */
  margin?(aheadMs: number): number;
  /**
   * The share of starting now's mean a later start must win by on top of `margin` (0.05: 5 % less carbon
   * than starting now): effects a forecast does not see (queueing when released, a rerun) cost something,
   * so a window only a little better than now is not worth the wait. Default 0.
   */
  minGain?: number;
  /** Later starts that may not be planned (no room left then); starting now never is. */
  blocked?(startMs: number): boolean;
}

export interface Plan {
  startMs: number;
  /** The forecast mean over [start, start + duration]: time-weighted, the value at the start for a zero duration. */
  expectedMean: number;
  /** The same starting now, to report what the shift gains. */
  nowMean: number;
}

/** Relative margin a later start must win by: a tie, up to floating-point noise, goes to the earlier start. */
const TIE_MARGIN = 1e-9;

/**
 * The best start for a job, never before now nor after its latest start (so a job whose duration is declared
 * meets its deadline), ties to the earliest; a job whose latest start is not after now starts now, as does a
 * job with an empty forecast (nothing known: means NaN). O(candidates + forecast points in the window): two
 * cursors sweep the forecast's running integral, one for the window starts, one for the window ends.
 */
export function planStart(request: PlanRequest): Plan {
  const { nowMs, durationMs, latestStartMs, forecast, stepMs, minimise = true } = request;
  if (!(stepMs > 0)) throw new RangeError(`planStart: bad step ${stepMs}`);
  if (!(durationMs >= 0)) throw new RangeError(`planStart: bad duration ${durationMs}`);
  if (forecast.length === 0) return { startMs: nowMs, expectedMean: NaN, nowMean: NaN };
  const meanFrom = windowMean(forecast, nowMs, durationMs);
  const nowMean = meanFrom(nowMs);
  let best = { startMs: nowMs, expectedMean: nowMean };
  let bestNet = (request.minGain ?? 0) * Math.abs(nowMean);
  for (const startMs of gridFrom(nowMs, latestStartMs, stepMs).slice(1)) {
    const mean = meanFrom(startMs);
    if (request.blocked?.(startMs)) continue;
    const net = (minimise ? nowMean - mean : mean - nowMean) - (request.margin?.(startMs - nowMs + durationMs / 2) ?? 0);
    if (net - bestNet > TIE_MARGIN * Math.max(1, Math.abs(nowMean))) {
      best = { startMs, expectedMean: mean };
      bestNet = net;
    }
  }
  return { ...best, nowMean };
}

/**
 * Mean of the forecast over [s, s + durationMs] for non-decreasing `s` from `originMs` on, in amortised O(1):
 * the difference of the running integral at the window's two ends, each end read by its own forward cursor.
 */
function windowMean(forecast: readonly Point[], originMs: number, durationMs: number): (startMs: number) => number {
  if (durationMs === 0) return (startMs) => valueAtOrBefore(forecast, startMs);
  const integralToStart = integralCursor(forecast, originMs);
  const integralToEnd = integralCursor(forecast, originMs);
  return (startMs) => (integralToEnd(startMs + durationMs) - integralToStart(startMs)) / durationMs;
}

/**
 * The running integral of the forecast's step function (the first value extends before the first point, the
 * last after the last) from a fixed reference, the point in force at `originMs`, to t, for non-decreasing
 * t >= originMs: the cursor moves forward over the points, adding each step's area once, so a sweep costs
 * O(points crossed) after one binary search. Only differences of it are meaningful.
 */
function integralCursor(points: readonly Point[], originMs: number): (tMs: number) => number {
  let i = Math.max(0, lastIndexAtOrBefore(points, originMs));
  let areaToPoint = 0;
  return (tMs) => {
    while (i + 1 < points.length && points[i + 1].atMs <= tMs) {
      areaToPoint += points[i].value * (points[i + 1].atMs - points[i].atMs);
      i++;
    }
    return areaToPoint + points[i].value * (tMs - points[i].atMs);
  };
}
