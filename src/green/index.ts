/**
 * Green-power signals, their forecasts and temporal shifting: pure modules (no clock; files are read only by
 * `loadSeries`) shared by the agents, the scheduler service and the simulator.
 */
export {
  DAY_MS,
  HOUR_MS,
  createSeries,
  gridFrom,
  lastIndexAtOrBefore,
  loadCarbonSeries,
  loadSeries,
  nextGridTime,
  Observations,
  RecentLevel,
  parseSeries,
  shareFromCarbon,
  valueAtOrBefore,
  type Outside,
  type Point,
  type Series,
  type SeriesKind,
  type SeriesOptions,
  type SeriesSpec,
} from './series';
export {
  forecastError,
  forecastErrors,
  oracleForecaster,
  persistenceForecaster,
  type ForecastError,
  type Forecaster,
  type LiveForecaster,
  type PersistenceOptions,
  type ReplayOptions,
} from './forecast';
export {
  ErrorTracker,
  FORECASTERS,
  MIN_ERROR_SCORES,
  UNMEASURED_ERROR_BOUND,
  UNMEASURED_ERROR_SHARE,
  plannedError,
  type ErrorAgainst,
  PERSISTENCE_ALPHAS,
  PROFILE_DAYS,
  PROFILE_RHOS,
  SCORED_HORIZONS_MS,
  blendForecaster,
  blendWithPublished,
  fittedPersistenceForecaster,
  fittedProfileForecaster,
  forecasterNamed,
  makeForecaster,
  profileForecaster,
  publishedForecaster,
  seasonalNaiveForecaster,
  skilled,
  type ForecasterName,
  type GridOptions,
  type SkillOptions,
  type SkilledForecaster,
} from './forecasters';
export { DEFAULT_MIN_GAIN, DeferralPlanner, type DeferralSettings } from './deferral';
export { latestStartOf, planStart, type Deferral, type Plan, type PlanRequest } from './shift';
export { DEADLINE_SAFETY_MS, safetyMarginMs } from '../core/deadline';
export { bookingShare, DEFAULT_DEFERRAL_SHARE, SWING_SDS, WORK_MIX_MEMORY_MS, WorkMix, type WorkMixState, workMixStateSchema, DEFAULT_DEFERRAL_SHARES, DeferralBook, ERROR_BOUND, deferralMargin, formatDeferralShares, MAX_DEFERRED_SHARE_OF_POOL, parseDeferralShares, planDeferral, poolDemand, poolSupply, shareOf, supplyUnits, type DeferralPlan, type DeferralShares } from './booking';
