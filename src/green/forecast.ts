import { DAY_MS as DAY_MS_, HOUR_MS as HOUR_MS_, Observations, gridFrom, nextGridTime, valueAtOrBefore, type Point, type Series } from './series';

// Local copies: the hot loops below read them per point (an imported binding is a getter once compiled).
const DAY_MS = DAY_MS_;
const HOUR_MS = HOUR_MS_;

/**
 * Predicts a signal: the value in force at `nowMs`, then one value at every step of the forecaster's grid in
 * (nowMs, nowMs + horizonMs], each in force until the next (a step function, as a {@link Series}).
 */
export interface Forecaster {
  forecast(nowMs: number, horizonMs: number): Point[];
}

/** A forecaster fed with the signal as time goes on, which knows nothing of what it has not been shown. */
export interface LiveForecaster extends Forecaster {
  /** Records the value observed at `atMs`; observations come in time order. */
  observe(atMs: number, value: number): void;
}

/** The recorded future of a series, sampled on its grid: perfect foresight, for simulation and as a bound. */
export function oracleForecaster(series: Series): Forecaster {
  return {
    forecast: (nowMs, horizonMs) =>
      gridFrom(nowMs, nowMs + horizonMs, series.stepMs, series.startMs).map((atMs) => ({ atMs, value: series.valueAt(atMs) })),
  };
}

export interface PersistenceOptions {
  /** The forecast grid: its step and a time on it (default the Unix epoch, so 30 minutes means :00 and :30). */
  stepMs: number;
  anchorMs?: number;
  /** Weight of the latest value one hour ahead; see {@link persistenceForecaster}. Default 0.9: of the values
   *  tried on gb_ci.csv (0 to 1), the best at 6 h ahead and within 4 % of the best at 1 h. */
  alpha?: number;
}

/**
 * Seasonal persistence for live use: value(now + h) ≈ w(h)·latest + (1 − w(h))·value(now + h − k·24 h), with k
 * the fewest whole days that land in the observed past. The weight w(h) = alpha^(h / 1 h) decays with the
 * horizon: the latest value is the best guess for the next minutes, but grid carbon intensity follows a daily
 * cycle, so further ahead the same time yesterday says more. w(0) = 1, so the forecast starts at the latest
 * value. Until a day has been observed, the missing yesterday is the latest value.
 *
 * It keeps only the last day of observations: older ones are never looked at.
 */
export function persistenceForecaster(options: PersistenceOptions): LiveForecaster {
  const { stepMs, anchorMs = 0, alpha = 0.9 } = options;
  if (!(stepMs > 0)) throw new RangeError(`persistence forecaster: bad step ${stepMs}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`persistence forecaster: alpha ${alpha} is not in 0..1`);
  // The observation in force a day ago and everything after.
  const seen = new Observations('persistence forecaster', DAY_MS);
  const seenAt = (tMs: number): number | undefined => seen.at(tMs);

  return {
    observe: (atMs, value) => seen.push(atMs, value),
    forecast(nowMs, horizonMs) {
      const latest = seenAt(nowMs);
      if (latest === undefined) return [];
      return gridFrom(nowMs, nowMs + horizonMs, stepMs, anchorMs).map((atMs) => {
        const h = atMs - nowMs;
        const weight = alpha ** (h / HOUR_MS);
        const daysBack = Math.max(1, Math.ceil(h / DAY_MS));
        const yesterday = seenAt(atMs - daysBack * DAY_MS) ?? latest;
        return { atMs, value: weight * latest + (1 - weight) * yesterday };
      });
    },
  };
}

export interface ReplayOptions {
  /** How far ahead each scored forecast looks. */
  horizonMs: number;
  /** The replay, [fromMs, toMs): the forecaster observes the series from `fromMs`; targets fall before `toMs`. */
  fromMs: number;
  toMs: number;
  /** A forecast every `stepMs`. */
  stepMs: number;
  /** History observed before the first scored forecast; default a day, what same-time-yesterday needs. */
  warmupMs?: number;
}

export interface ForecastError {
  /** Mean absolute error, in the series' unit. */
  mae: number;
  /** Mean absolute percentage error as a fraction (0.1 = 10 %), over the targets whose actual value is not 0. */
  mape: number;
  /** Forecasts scored. */
  count: number;
}

/**
 * Replays a series through a forecaster and scores the value each forecast gives for `horizonMs` ahead
 * against the recorded one. A live forecaster is shown the series (at `fromMs`, then on the series' grid) only up
 * to the time of each forecast, so it is scored as it would run, never on the future. The means are NaN when
 * nothing was scored.
 */
export function forecastError(series: Series, forecaster: Forecaster | LiveForecaster, options: ReplayOptions): ForecastError {
  return forecastErrors(series, forecaster, { ...options, horizonsMs: [options.horizonMs] })[0];
}

/** {@link forecastError} at several horizons in one replay: one score per horizon, in order. */
export function forecastErrors(series: Series, forecaster: Forecaster | LiveForecaster, options: Omit<ReplayOptions, 'horizonMs'> & { horizonsMs: readonly number[] }): ForecastError[] {
  const { horizonsMs, fromMs, toMs, stepMs, warmupMs = DAY_MS } = options;
  if (!(stepMs > 0) || !horizonsMs.every((h) => h >= 0)) throw new RangeError('forecast error: the step must be positive and the horizon not negative');
  const maxHorizonMs = Math.max(0, ...horizonsMs);
  const showUpTo = 'observe' in forecaster ? observer(series, fromMs, forecaster) : () => {};
  const sums = horizonsMs.map(() => ({ absolute: 0, relative: 0, relativeCount: 0, count: 0 }));
  for (let t = fromMs + warmupMs; t < toMs; t += stepMs) {
    showUpTo(t);
    const forecast = forecaster.forecast(t, maxHorizonMs);
    horizonsMs.forEach((horizonMs, i) => {
      if (t + horizonMs >= toMs) return;
      const predicted = valueAtOrBefore(forecast, t + horizonMs);
      const actual = series.valueAt(t + horizonMs);
      const error = Math.abs(predicted - actual);
      const s = sums[i];
      s.absolute += error;
      s.count++;
      if (actual !== 0) {
        s.relative += error / Math.abs(actual);
        s.relativeCount++;
      }
    });
  }
  return sums.map((s) => ({ mae: s.absolute / s.count, mape: s.relative / s.relativeCount, count: s.count }));
}

/** Shows a live forecaster the series at `fromMs` and then on the series' grid, up to each time asked. */
function observer(series: Series, fromMs: number, forecaster: LiveForecaster): (tMs: number) => void {
  forecaster.observe(fromMs, series.valueAt(fromMs));
  let nextMs = nextGridTime(fromMs, series.stepMs, series.startMs);
  return (tMs) => {
    for (; nextMs <= tMs; nextMs += series.stepMs) forecaster.observe(nextMs, series.valueAt(nextMs));
  };
}
