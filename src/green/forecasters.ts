import { persistenceForecaster, type LiveForecaster } from './forecast';
import { DAY_MS as DAY_MS_, HOUR_MS as HOUR_MS_, Observations, RecentLevel, gridFrom, valueAtOrBefore, type Point } from './series';

// Local copies: hot loops read them per point (an imported binding is a getter once compiled).
const DAY_MS = DAY_MS_;
const HOUR_MS = HOUR_MS_;

/**
 * A live forecaster that knows how wrong it has recently been: every observation scores the forecasts it
 * made earlier for that time, per horizon, so a planner can weigh a forecast saving against the error of a
 * forecast that far ahead, and a blend can weigh its members.
 */
export interface SkilledForecaster extends LiveForecaster {
  /** Recent mean absolute error of the forecasts `horizonMs` ahead (linear between the tracked horizons,
   *  the last one's beyond them); undefined until something has been scored. With `minScores`, undefined
   *  also while the tracked horizon at or beyond `horizonMs` has been scored fewer times than that: an
   *  error not yet measured that far ahead is not taken from a shorter horizon (a planner then holds
   *  plannedError's larger prior, rather than trust a forecast it cannot judge). */
  recentError(horizonMs: number, minScores?: number): number | undefined;
  /** The largest recent error of the tracked horizons up to `horizonMs` scored so far; undefined if none is. */
  largestError(horizonMs: number): number | undefined;
  /** The mean absolute error of the last MIN_ERROR_SCORES or so forecasts `horizonMs` ahead (an exponential mean
   *  with that memory; interpolated as recentError is); undefined when recentError is. */
  latelyError(horizonMs: number): number | undefined;
  /** The signal's level: its time-weighted mean over the last day observed (since the first observation while
   *  that is less than a day ago); undefined before anything is observed. */
  level(): number | undefined;
}

/**
 * Scores a horizon needs before a planner trusts its error (half a day of hourly forecasts): a few lucky
 * forecasts say little of the next one, and deferring on them is how a green policy backfires.
 */
export const MIN_ERROR_SCORES = 12;

/**
 * The error a planner holds against a forecast it has not yet measured MIN_ERROR_SCORES times that far ahead,
 * as a share of the signal's level (its mean over the last day observed, SkilledForecaster.level): about the
 * mean absolute error of persistence, the forecast that needs no history, 6 to 24 h ahead on the hardest grids
 * at hand (the value now taken for later: 19–24% of the grid's mean on GB, 16–21% on DE, 11–15% on FR, over
 * 2019-12 to 2021-01). A share of the mean, as measured: a share of the latest value held a forecaster
 * without history to a bar half again as high at a daily peak (where waiting pays) as at a trough. It is
 * held UNMEASURED_ERROR_BOUND times against a later window, so that window must look better than now by half
 * the signal's level (and by the error over the run starting now besides) before a forecaster without
 * history defers to it: what a cold start acts on is a large change it knows of (a zone's contracted solar
 * hours, the night it has just seen), not a forecast of the grid's own swings.
 */
export const UNMEASURED_ERROR_SHARE = 0.25;

/**
 * How many times plannedError takes an error not yet measured against a later window: twice, where a measured
 * one is taken once (ERROR_BOUND). A measured error is this grid's own, the larger of a week's mean and the last
 * half day's; an unmeasured one is a guess from other grids. Taken once, a forecaster without history, on a
 * grid that rose all day from a dawn trough and stayed high, deferred work to the next morning's trough, which
 * did not come back, and emitted more than green-blind (test/sim/eval-green.test.ts, the shape of Texas from
 * 2022-12-29). Against starting now the guess is taken once, as before 2026-12-07: twice there as well, the
 * forecaster's first half day deferred almost nothing, and a day with every job deferrable on a cold start
 * saved 3.49% and 3.54% where it saves 3.93% and 4.37% (GB and DE, six windows each).
 */
export const UNMEASURED_ERROR_BOUND = 2;

/** Which forecast an error is held against: a later window's, or starting now's (see plannedError). */
export type ErrorAgainst = 'later' | 'now';

/**
 * The error a planner holds against `forecaster`'s forecast `horizonMs` ahead, for a later window (`later`) or
 * for starting now (`now`, the run from now): once measured MIN_ERROR_SCORES times there, its recent error (a
 * week's memory) or, if larger, its error lately (the last half day's): errors come in runs (a cold snap, a calm
 * that ends), and a week's mean would hold the planner to last week's calm through the run; until then
 * UNMEASURED_ERROR_SHARE of the signal's level, or the largest error measured at the shorter scored horizons if
 * that is larger, taken UNMEASURED_ERROR_BOUND times for a later window. Infinity before anything is observed.
 */
export function plannedError(forecaster: SkilledForecaster, horizonMs: number, against: ErrorAgainst = 'later'): number {
  const measured = forecaster.recentError(horizonMs, MIN_ERROR_SCORES);
  if (measured !== undefined) return Math.max(measured, forecaster.latelyError(horizonMs) ?? 0);
  const level = forecaster.level();
  if (level === undefined) return Infinity;
  return (against === 'later' ? UNMEASURED_ERROR_BOUND : 1) * Math.max(UNMEASURED_ERROR_SHARE * level, forecaster.largestError(horizonMs) ?? 0);
}

/** The horizons scored: a step, then out to two days. */
export const SCORED_HORIZONS_MS = [0.5, 1, 2, 3, 6, 9, 12, 18, 24, 36, 48].map((h) => h * HOUR_MS);

export interface SkillOptions {
  /** Scores are a running mean of the first this many forecasts per horizon, then an exponential mean with this
   *  memory (default a week of hourly forecasts). */
  memory?: number;
  horizonsMs?: readonly number[];
  /** A forecast is kept for scoring at most this often (default an hour): the error moves slowly, forecasts cost. */
  recordEveryMs?: number;
}

/**
 * The recent error of forecasts, per horizon. `record` keeps what a forecast said for each horizon ahead;
 * `score` compares, once the observation at or after a target time comes, the value then in force with it.
 */
export class ErrorTracker {
  private readonly horizons: readonly number[];
  private readonly memory: number;
  private readonly due: { targetMs: number; predicted: number }[][];
  private readonly heads: number[];
  private readonly mae: number[];
  /** The same errors with a memory of MIN_ERROR_SCORES: what the last half day of forecasts missed by. */
  private readonly lately: number[];
  private readonly counts: number[];
  private last: Point | undefined;

  constructor(options: SkillOptions = {}) {
    this.horizons = options.horizonsMs ?? SCORED_HORIZONS_MS;
    this.memory = options.memory ?? 7 * 24;
    this.due = this.horizons.map(() => []);
    this.heads = this.horizons.map(() => 0);
    this.mae = this.horizons.map(() => 0);
    this.lately = this.horizons.map(() => 0);
    this.counts = this.horizons.map(() => 0);
  }

  get maxHorizonMs(): number {
    return this.horizons[this.horizons.length - 1];
  }

  /** Keeps what a forecast made at `atMs` says for each scored horizon. */
  record(atMs: number, forecast: readonly Point[]): void {
    if (forecast.length === 0) return;
    this.horizons.forEach((h, i) => {
      const predicted = valueAtOrBefore(forecast, atMs + h);
      // NaN: no forecast for that time (a quiet member), so nothing to score.
      if (!Number.isNaN(predicted)) this.due[i].push({ targetMs: atMs + h, predicted });
    });
  }

  /** Scores the forecasts whose target has come, given the observation at `atMs`. */
  score(atMs: number, value: number): void {
    for (let i = 0; i < this.horizons.length; i++) {
      const due = this.due[i];
      let head = this.heads[i];
      while (head < due.length && due[head].targetMs <= atMs) {
        const { targetMs, predicted } = due[head++];
        // The value in force at the target: this observation's, or the one before when it came later.
        const actual = targetMs === atMs || !this.last ? value : this.last.value;
        const error = Math.abs(predicted - actual);
        const count = ++this.counts[i];
        this.mae[i] += (error - this.mae[i]) / Math.min(count, this.memory);
        this.lately[i] += (error - this.lately[i]) / Math.min(count, MIN_ERROR_SCORES);
      }
      if (head > 1024 && head > due.length / 2) {
        due.splice(0, head);
        head = 0;
      }
      this.heads[i] = head;
    }
    this.last = { atMs, value };
  }

  /** The largest mean absolute error of the horizons up to `horizonMs` scored at least once; undefined if none is. */
  largestErrorUpTo(horizonMs: number): number | undefined {
    let largest: number | undefined;
    for (let i = 0; i < this.horizons.length && this.horizons[i] <= horizonMs; i++) {
      if (this.counts[i] > 0 && (largest === undefined || this.mae[i] > largest)) largest = this.mae[i];
    }
    return largest;
  }

  errorAt(horizonMs: number, minScores = 0): number | undefined {
    const hs = this.horizons;
    if (minScores > 0) {
      const i = hs.findIndex((h) => h >= horizonMs);
      if (this.counts[i < 0 ? hs.length - 1 : i] < minScores) return undefined;
    }
    return this.interpolated(this.mae, horizonMs);
  }

  /** As errorAt, of the errors lately (a memory of MIN_ERROR_SCORES forecasts). */
  latelyAt(horizonMs: number): number | undefined {
    return this.interpolated(this.lately, horizonMs);
  }

  /** Linear between the tracked horizons scored, the last scored one's beyond them; undefined if the first is not. */
  private interpolated(errors: readonly number[], horizonMs: number): number | undefined {
    const hs = this.horizons;
    const scored = (i: number) => this.counts[i] > 0;
    if (!scored(0)) return undefined;
    if (horizonMs <= hs[0]) return errors[0];
    for (let i = 1; i < hs.length; i++) {
      if (!scored(i)) return errors[i - 1];
      if (horizonMs <= hs[i]) return errors[i - 1] + ((errors[i] - errors[i - 1]) * (horizonMs - hs[i - 1])) / (hs[i] - hs[i - 1]);
    }
    return errors[hs.length - 1];
  }
}

/** A live forecaster that scores itself as it goes (see {@link SkilledForecaster}). */
export function skilled(forecaster: LiveForecaster, options: SkillOptions = {}): SkilledForecaster {
  const tracker = new ErrorTracker(options);
  const recent = new RecentLevel(DAY_MS);
  const everyMs = options.recordEveryMs ?? HOUR_MS;
  let recordedMs = -Infinity;
  // The last forecast, until the next observation: a blend records its members' forecasts for the same time
  // and horizon as they record their own, and a fitted forecaster its candidates' (read-only for callers).
  let observed = 0;
  let last: { nowMs: number; horizonMs: number; observed: number; points: Point[] } | undefined;
  const forecast = (nowMs: number, horizonMs: number): Point[] => {
    if (last && last.nowMs === nowMs && last.horizonMs === horizonMs && last.observed === observed) return last.points;
    last = { nowMs, horizonMs, observed, points: forecaster.forecast(nowMs, horizonMs) };
    return last.points;
  };
  return {
    observe(atMs, value) {
      tracker.score(atMs, value);
      recent.push(atMs, value);
      forecaster.observe(atMs, value);
      observed++;
      if (atMs - recordedMs < everyMs) return;
      recordedMs = atMs;
      tracker.record(atMs, forecast(atMs, tracker.maxHorizonMs));
    },
    forecast,
    recentError: (horizonMs, minScores) => tracker.errorAt(horizonMs, minScores),
    largestError: (horizonMs) => tracker.largestErrorUpTo(horizonMs),
    latelyError: (horizonMs) => tracker.latelyAt(horizonMs),
    level: () => recent.mean,
  };
}

export interface GridOptions {
  /** The forecast grid: its step and a time on it (default the Unix epoch). */
  stepMs: number;
  anchorMs?: number;
}

/** How a forecaster that needs history forecasts the times its history does not cover. */
export interface QuietOption {
  /**
   * No forecast (NaN) for a time its history does not cover, and nothing at all (an empty forecast) until it
   * covers any time ahead, rather than the latest value there (the default). A blend leaves a quiet member
   * out where it says nothing instead of counting persistence once more, and scores it only on what it did
   * forecast: the latest value held in its name would earn it persistence's error, and with it a weight, for
   * forecasts of its own it has never been judged on.
   */
  quiet?: boolean;
}

/**
 * Seasonal naive: the value `periodMs` earlier (the same time yesterday, or last week), going back whole
 * periods until the time has been observed; the latest value for now and before a period has been seen
 * (quiet: the value a period before for now too, NaN for the times not seen a period before, and nothing
 * while no time ahead has been). Keeps one period of observations.
 */
export function seasonalNaiveForecaster(options: GridOptions & QuietOption & { periodMs: number }): LiveForecaster {
  const { stepMs, anchorMs = 0, periodMs, quiet = false } = options;
  if (!(stepMs > 0) || !(periodMs > 0)) throw new RangeError('seasonal naive forecaster: the step and the period must be positive');
  const seen = new Observations('seasonal naive forecaster', periodMs);
  const seenAt = (tMs: number): number | undefined => seen.at(tMs);
  return {
    observe: (atMs, value) => seen.push(atMs, value),
    forecast(nowMs, horizonMs) {
      const latest = seenAt(nowMs);
      if (latest === undefined) return [];
      let seenBefore = false;
      const missing = quiet ? NaN : latest;
      const points = gridFrom(nowMs, nowMs + horizonMs, stepMs, anchorMs).map((atMs, i) => {
        if (i === 0 && !quiet) return { atMs, value: latest };
        const back = Math.max(1, Math.ceil((atMs - nowMs) / periodMs)) * periodMs;
        const before = seenAt(atMs - back);
        if (before !== undefined) seenBefore = true;
        return { atMs, value: before ?? missing };
      });
      return quiet && !seenBefore ? [] : points;
    },
  };
}

/**
 * The observations a daily profile is made of, and the profile ahead of each forecast: computed once for
 * every fade rate a fitted profile tries (see {@link profileForecaster}).
 */
class DailyProfile {
  private readonly seen: Observations;
  private observed = 0;
  private last: Point | undefined;
  private shaped: { nowMs: number; horizonMs: number; observed: number; latest: number; offset: number | undefined; points: Point[] } | undefined;

  constructor(
    private readonly grid: GridOptions,
    private readonly days: number,
  ) {
    this.seen = new Observations('profile forecaster', (days + 1) * DAY_MS);
  }

  /** Records an observation; the same one again (every candidate of a fitted profile passes it on) is ignored. */
  observe(atMs: number, value: number): void {
    if (this.last && this.last.atMs === atMs && this.last.value === value) return;
    this.seen.push(atMs, value);
    this.last = { atMs, value };
    this.observed++;
  }

  /**
   * The latest value at `nowMs`, today's offset from the profile then (undefined before a day has been seen),
   * and the profile at every grid time ahead (NaN where no day before it has been seen by now).
   */
  ahead(nowMs: number, horizonMs: number): { latest: number; offset: number | undefined; points: Point[] } | undefined {
    const s = this.shaped;
    if (s && s.nowMs === nowMs && s.horizonMs === horizonMs && s.observed === this.observed) return s;
    const latest = this.seen.at(nowMs);
    if (latest === undefined) return undefined;
    const profileNow = this.profileAt(nowMs, nowMs);
    const known = !Number.isNaN(profileNow);
    const points = gridFrom(nowMs, nowMs + horizonMs, this.grid.stepMs, this.grid.anchorMs ?? 0).map((atMs) => ({ atMs, value: known ? this.profileAt(atMs, nowMs) : NaN }));
    this.shaped = { nowMs, horizonMs, observed: this.observed, latest, offset: known ? latest - profileNow : undefined, points };
    return this.shaped;
  }

  /** Mean of the values at t − k days, k = 1..days, observed by `nowMs`; NaN if none was. */
  private profileAt(tMs: number, nowMs: number): number {
    let sum = 0;
    let n = 0;
    for (let k = 1; k <= this.days; k++) {
      const atMs = tMs - k * DAY_MS;
      if (atMs > nowMs) continue;
      if (!this.seen.covers(atMs)) break;
      sum += this.seen.at(atMs)!;
      n++;
    }
    return n > 0 ? sum / n : NaN;
  }
}

/** A profile forecaster with fade rate `rho` on a shared {@link DailyProfile} (quiet: nothing until a day is seen, then NaN ahead where no day before it has been). */
function profileWith(profile: DailyProfile, rho: number, quiet: boolean): LiveForecaster {
  if (!(rho >= 0 && rho <= 1)) throw new RangeError(`profile forecaster: rho ${rho} is not in 0..1`);
  return {
    observe: (atMs, value) => profile.observe(atMs, value),
    forecast(nowMs, horizonMs) {
      const ahead = profile.ahead(nowMs, horizonMs);
      if (!ahead) return [];
      const { latest, offset, points } = ahead;
      if (quiet && offset === undefined) return [];
      // Where the profile knows nothing (before a day is seen, or ahead of the days seen): the latest value,
      // or no forecast when quiet. Now is the latest value either way.
      const unknown = quiet ? NaN : latest;
      return points.map(({ atMs, value }, i) => {
        if (i === 0) return { atMs, value: latest };
        if (offset === undefined || Number.isNaN(value)) return { atMs, value: unknown };
        return { atMs, value: value + rho ** ((atMs - nowMs) / HOUR_MS) * offset };
      });
    },
  };
}

/** The days a daily profile averages (see {@link profileForecaster}). */
export const PROFILE_DAYS = 7;

/**
 * A daily profile with today's level: value(now + h) ≈ profile(now + h) + rho^(h / 1 h) · (latest − profile(now)),
 * profile(t) being the mean of the values in force at the same time of day on the last `days` days (those
 * observed by now). A mean of several days keeps one day's weather out of the daily shape (solar noon, the
 * evening peak), and today's offset from it fades with the horizon. The latest value until a day has been
 * observed. Keeps `days` days of observations and one more.
 */
export function profileForecaster(options: GridOptions & { days?: number; rho: number }): LiveForecaster {
  const { days = PROFILE_DAYS, rho, ...grid } = options;
  if (!(grid.stepMs > 0) || !(Number.isInteger(days) && days >= 1)) throw new RangeError('profile forecaster: the step must be positive and the days a whole number of at least 1');
  return profileWith(new DailyProfile(grid, days), rho, false);
}

/**
 * Combines skilled members point by point: each horizon's value is a weighted mean of the members' values
 * for that time, the weights from `weigh` given each member's recent error at that horizon: nothing for a
 * member not yet scored there while others are, the same for all while none is. A member with no forecast
 * for a time (NaN) is left out there and the others' weights scaled up.
 */
function combined(members: readonly SkilledForecaster[], grid: GridOptions, weigh: (errors: readonly number[]) => number[], options: SkillOptions): SkilledForecaster {
  const { stepMs, anchorMs = 0 } = grid;
  return skilled(
    {
      observe(atMs, value) {
        for (const m of members) m.observe(atMs, value);
      },
      forecast(nowMs, horizonMs) {
        // A member with nothing to say now (a published forecast that has run out) sits this one out.
        const all = members.map((m) => m.forecast(nowMs, horizonMs));
        const present = members.filter((_, i) => all[i].length > 0);
        if (present.length === 0) return [];
        const forecasts = all.filter((f) => f.length > 0);
        let lastHorizon = -1;
        let weights: number[] = present.map(() => 1 / present.length);
        return gridFrom(nowMs, nowMs + horizonMs, stepMs, anchorMs).map((atMs, k) => {
          // Errors change only between scored horizons: weigh once per half-hour of horizon.
          const h = Math.floor((atMs - nowMs) / (HOUR_MS / 2));
          if (h !== lastHorizon) {
            lastHorizon = h;
            // A member not yet scored at the tracked horizon this far ahead weighs nothing here while others
            // are: its error at a shorter horizon says nothing of this one (a quiet member, scored only on
            // the times it has seen a period before, would weigh as if it knew the next hour).
            weights = weighScored(present.map((m) => m.recentError(atMs - nowMs, 1)), weigh);
          }
          // A member quiet at this time (NaN) sits it out: the others' weights are scaled up to make one.
          let value = 0;
          let weight = 0;
          let sum = 0;
          let n = 0;
          for (let i = 0; i < forecasts.length; i++) {
            const f = forecasts[i];
            // Members forecast on the same grid: the point at this index is usually the one for this time.
            const p = f[k];
            const v = p !== undefined && p.atMs === atMs ? p.value : valueAtOrBefore(f, atMs);
            if (Number.isNaN(v)) continue;
            value += weights[i] * v;
            weight += weights[i];
            sum += v;
            n++;
          }
          // Only members not yet scored speak here: they weigh the same.
          return { atMs, value: weight > 0 ? value / weight : n > 0 ? sum / n : NaN };
        });
      },
    },
    options,
  );
}

/**
 * The weights of members by their errors: `weigh` over those scored, nothing for those not yet scored (a member
 * that joined later, such as a published forecast, counts once its own error is known), and the same weight
 * for all while none is scored.
 */
function weighScored(errors: readonly (number | undefined)[], weigh: (errors: readonly number[]) => number[]): number[] {
  const scored = errors.filter((e): e is number => e !== undefined);
  if (scored.length === 0) return errors.map(() => 1 / errors.length);
  if (scored.length === errors.length) return weigh(scored);
  const w = weigh(scored);
  let i = 0;
  return errors.map((e) => (e === undefined ? 0 : w[i++]));
}

/** Inverse squared error weights (each member's share of the precision), normalised. */
function inverseSquare(errors: readonly number[]): number[] {
  const precision = errors.map((e) => 1 / Math.max(e, 1e-6) ** 2);
  const total = precision.reduce((a, b) => a + b, 0);
  return precision.map((p) => p / total);
}

/** All the weight on the member with the lowest error (the last on a tie, to a rounding error). */
function best(errors: readonly number[]): number[] {
  const min = Math.min(...errors);
  let i = errors.length - 1;
  while (errors[i] > min * (1 + 1e-9)) i--;
  return errors.map((_, j) => (j === i ? 1 : 0));
}

/** Blends skilled forecasters, each horizon weighted by the inverse square of the members' recent error there. */
export function blendForecaster(members: readonly SkilledForecaster[], grid: GridOptions, options: SkillOptions = {}): SkilledForecaster {
  if (members.length === 0) throw new RangeError('blend forecaster: no members');
  return combined(members, grid, inverseSquare, options);
}

/** The persistence weights tried when fitting (see {@link fittedPersistenceForecaster}). */
export const PERSISTENCE_ALPHAS = [0, 0.5, 0.7, 0.8, 0.9, 0.95, 1];

/**
 * Persistence with its parameter fitted on past data only: one persistence forecaster per alpha in
 * {@link PERSISTENCE_ALPHAS}, each scored as it runs, and at every horizon the forecast of the alpha with
 * the lowest recent error there (until anything has been scored, the mean of them all). On a tie the highest
 * alpha, persistence itself: before a day is seen every alpha forecasts the latest value and so ties, and the
 * lowest would then be same time yesterday, never judged, the moment yesterday is seen.
 */
export function fittedPersistenceForecaster(grid: GridOptions, options: SkillOptions = {}): SkilledForecaster {
  const candidates = PERSISTENCE_ALPHAS.map((alpha) => skilled(persistenceForecaster({ ...grid, alpha }), options));
  return combined(candidates, grid, best, options);
}

/** The fade rates of today's offset tried when fitting a daily profile (see {@link fittedProfileForecaster}). */
export const PROFILE_RHOS = [0, 0.5, 0.8, 0.9, 0.95, 0.98, 1];

/**
 * A daily profile with its fade rate fitted on past data only: one {@link profileForecaster} per rho in
 * {@link PROFILE_RHOS}, each scored as it runs, and at every horizon the forecast of the one with the lowest
 * recent error there (until anything has been scored, the mean of them all; on a tie the slowest fade).
 */
export function fittedProfileForecaster(options: GridOptions & QuietOption, skill: SkillOptions = {}): SkilledForecaster {
  const { quiet = false, ...grid } = options;
  // One profile for all the candidates: they differ only in how fast today's offset fades.
  const profile = new DailyProfile(grid, PROFILE_DAYS);
  const candidates = PROFILE_RHOS.map((rho) => skilled(profileWith(profile, rho, quiet), skill));
  return combined(candidates, grid, best, skill);
}

/**
 * A forecast someone else publishes (the grid operator's, a data provider's; see PublishedForecast), on the
 * forecaster's grid, to blend with one of this project's (`blendForecaster`: each weighed by its recent error,
 * a member not yet scored counting from when it is). The value observed last for now and until the published
 * forecast begins, then the published value in force at each time (its last beyond its end). Nothing (an empty
 * forecast) before anything is observed, or when no forecast was received by then or the last one has run
 * out: a blend then goes on without it.
 */
export function publishedForecaster(options: GridOptions & { published: (nowMs: number) => readonly Point[] | undefined }): LiveForecaster {
  const { stepMs, anchorMs = 0, published } = options;
  let latest: number | undefined;
  return {
    observe: (_atMs, value) => {
      latest = value;
    },
    forecast(nowMs, horizonMs) {
      const points = published(nowMs);
      if (latest === undefined || !points || points.length === 0 || points[points.length - 1].atMs <= nowMs) return [];
      const now = latest;
      return gridFrom(nowMs, nowMs + horizonMs, stepMs, anchorMs).map((atMs, i) => ({ atMs, value: i === 0 || atMs < points[0].atMs ? now : valueAtOrBefore(points, atMs) }));
    },
  };
}

/**
 * `own` blended with a published forecast, each weighed by its recent error (see {@link publishedForecaster}):
 * the service's with QY_CARBON_FORECAST_URL, eval:green's with `--published-error`. `member` is the published
 * one as it scores itself, for showing its errors.
 */
export function blendWithPublished(own: SkilledForecaster, grid: GridOptions, published: (nowMs: number) => readonly Point[] | undefined): { forecaster: SkilledForecaster; member: SkilledForecaster } {
  const member = skilled(publishedForecaster({ ...grid, published }));
  return { forecaster: blendForecaster([own, member], grid), member };
}

/** The forecasters eval:forecast scores and the simulator and the service may run, by name. */
export const FORECASTERS = ['persistence', 'fitted-persistence', 'seasonal-day', 'seasonal-week', 'profile', 'blend'] as const;
export type ForecasterName = (typeof FORECASTERS)[number];

/**
 * A live forecaster by name, scoring itself. `profile` is the fitted daily profile; `blend` weighs fitted
 * persistence, the fitted daily profile, same time yesterday and same time last week by their recent errors.
 * All but fitted persistence are quiet: they say nothing for the times their history does not cover, so a
 * cold blend neither counts persistence three times more nor takes a member that has not yet been judged on
 * its own forecasts for one that has (same time yesterday, at a cold start, weighed as much as persistence with
 * persistence's error, and deferred work to a trough that did not come back). `persistence` keeps its default
 * alpha (fitted on gb_ci.csv, in sample).
 */
export function makeForecaster(name: ForecasterName, grid: GridOptions, options: SkillOptions = {}): SkilledForecaster {
  switch (name) {
    case 'persistence':
      return skilled(persistenceForecaster(grid), options);
    case 'fitted-persistence':
      return fittedPersistenceForecaster(grid, options);
    case 'seasonal-day':
      return skilled(seasonalNaiveForecaster({ ...grid, periodMs: DAY_MS }), options);
    case 'seasonal-week':
      return skilled(seasonalNaiveForecaster({ ...grid, periodMs: 7 * DAY_MS }), options);
    case 'profile':
      return fittedProfileForecaster(grid, options);
    case 'blend':
      return blendForecaster(
        [
          fittedPersistenceForecaster(grid, options),
          fittedProfileForecaster({ ...grid, quiet: true }, options),
          skilled(seasonalNaiveForecaster({ ...grid, periodMs: DAY_MS, quiet: true }), options),
          skilled(seasonalNaiveForecaster({ ...grid, periodMs: 7 * DAY_MS, quiet: true }), options),
        ],
        grid,
        options,
      );
  }
}

/** Parses a forecaster's name (for flags and configuration); throws with the known names. */
export function forecasterNamed(name: string): ForecasterName {
  if ((FORECASTERS as readonly string[]).includes(name)) return name as ForecasterName;
  throw new Error(`unknown forecaster ${name}; known: ${FORECASTERS.join(', ')}`);
}
