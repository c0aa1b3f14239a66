import { POOLS, type Pool } from '../src/protocol';
import type { ClusterState, PendingQueue } from '../src/core';
import { DAY_MS, HOUR_MS, pacer, type Clock, type Timer } from '../src/time';
import { fromSetting } from '../src/lifecycle';
import { DeferralPlanner, MIN_ERROR_SCORES, blendWithPublished, Observations, plannedError, SCORED_HORIZONS_MS, lastIndexAtOrBefore, loadCarbonSeries, makeForecaster, supplyUnits, type Point, type Series, type SkilledForecaster } from '../src/green';
import { LiveCarbon, PublishedForecast, loadHeaderFile } from '../src/green/live-carbon';
import type { GreenHistoryStore } from '../src/store/green-history';
import type { GreenView } from '../src/protocol';
import type { NatsConnection } from '@nats-io/transport-node';
import { Gauge, type Registry } from 'prom-client';
import { createLogger, type Logger } from '../src/telemetry/logger';
import type { SchedulerConfig } from './config';

/** How much of the observed signal is kept and stored (qy-green): the week the daily profile and same time last week look back, and a day more for their errors. */
export const GREEN_HISTORY_MS = 8 * DAY_MS;
/** At most one stored point per this long, whatever QY_GREEN_STEP_MS is (a short step would store more than the forecaster needs). */
export const GREEN_HISTORY_RESOLUTION_MS = 5 * 60_000;
/** How soon a start that could not observe the signal (no node ready yet) tries again. */
export const FIRST_OBSERVATION_RETRY_MS = 5_000;
/** The leader stores the history at most this often: a restart loses at most this much of it. */
export const GREEN_HISTORY_SAVE_EVERY_MS = 5 * 60_000;

/** Where the observed signal is kept between runs, and whether this replica is the one that stores it now. */
export interface GreenPersistence {
  store: Pick<GreenHistoryStore, 'load' | 'save'>;
  /** True while this replica should store it (the service: while it leads `general`). */
  saves: () => boolean;
}

/**
 * The green signal's gauges, computed at scrape time from `green()` (docs:gen builds them without a signal,
 * as it does the state keeper's): the live feed's age, the forecaster's recent errors, each pool's booking share.
 */
export class GreenMetrics {
  constructor(registry: Registry, green: () => Pick<GreenSignal, 'live' | 'published' | 'forecasterView' | 'planner'>, clock: Clock) {
    new Gauge({
      name: 'qy_green_signal_age_seconds',
      help: 'Age of the last reading of the live carbon feed (QY_CARBON_URL, QY_CARBON_SUBJECT); past QY_CARBON_STALE_MS the signal falls back. Absent without a feed or before its first reading.',
      registers: [registry],
      collect() {
        this.reset();
        const age = green().live.ageMs(clock.now());
        if (age !== undefined) this.set(age / 1000);
      },
    });
    new Gauge({
      name: 'qy_green_forecast_error_g_per_kwh',
      help: "Recent mean absolute error of the green forecaster's forecasts this far ahead (gCO2/kWh); absent until measured 12 times at that horizon (plans meanwhile hold a quarter of the signal's level against it, twice against a later window's forecast).",
      labelNames: ['ahead_hours'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { aheadHours, gPerKwh } of green().forecasterView().errors) if (gPerKwh !== null) this.set({ ahead_hours: String(aheadHours) }, gPerKwh);
      },
    });
    new Gauge({
      name: 'qy_green_published_forecast_ahead_seconds',
      help: 'How far ahead the published carbon forecast (QY_CARBON_FORECAST_URL) reaches now; 0 when it has run out (its polls failing), when the forecaster goes on without it. Absent without one.',
      registers: [registry],
      collect() {
        this.reset();
        const published = green().published;
        if (published) this.set(published.aheadMs(clock.now()) / 1000);
      },
    });
    new Gauge({
      name: 'qy_green_deferral_share',
      help: "Share of a pool deferred jobs may book in any step now: QY_GREEN_DEFERRAL_SHARE's, more while less than half the pool's recent work cannot wait, never more than the room its load and, where work cannot wait, two and a half standard deviations of its swings leave free.",
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        for (const pool of POOLS) this.set({ pool }, green().planner.bookingShare(pool));
      },
    });
  }
}

/**
 * The green signal deferral plans against, observed every step: the grid's carbon intensity from a live
 * feed (QY_CARBON_URL polled, or QY_CARBON_SUBJECT) while its last reading is fresher than QY_CARBON_STALE_MS,
 * else from QY_CARBON_FILE when one is configured, otherwise the constant intensity times the share of the nodes'
 * power that is not green (their agents' green share), so that days of wind and sun are what deferral
 * waits for. A live forecaster (QY_GREEN_FORECASTER, by default the blend of fitted persistence, the fitted
 * daily profile, and same time yesterday and last week) learns from what has been observed and scores itself;
 * the deferral planner (the pipeline's PreEnqueue stage) plans against the forecast made at the last
 * observation (as the simulator does: one forecast a step, not one a job), defers only for savings above its
 * recent error, revises held plans at each new observation, and leaves room before a deadline to run a job
 * again after a node failure. What it observes is kept for GREEN_HISTORY_MS and stored by the replica that
 * leads `general` (qy-green); a replica that starts replays it into its forecaster (`restore`), so a restart
 * does not leave deferral waiting days for its errors to be measured again.
 */
export class GreenSignal {
  /** The grid's carbon intensity over time, when a file gives it. */
  readonly carbon: Series | undefined;
  /** The live feed, when one is configured. */
  readonly live: LiveCarbon;
  /** A published forecast (QY_CARBON_FORECAST_URL), blended into the forecaster. */
  readonly published: PublishedForecast | undefined;
  /** The published forecast as the blend's member, scoring itself. */
  private readonly publishedMember: SkilledForecaster | undefined;
  readonly forecaster: SkilledForecaster;
  /** Observations so far: the planner revises its plans when this changes. */
  private observations = 0;
  private lastObservedMs = -Infinity;
  /** The forecast made at the last observation, as far ahead as plans have asked since. */
  private ahead: { observations: number; toMs: number; points: Point[] } | undefined;
  readonly planner: DeferralPlanner;
  private readonly log: Logger;
  private timer: Timer | undefined;
  /** Tries the first observation again while the signal is not known (see `start`). */
  private firstTry: Timer | undefined;
  /** What was observed, at most one point per GREEN_HISTORY_RESOLUTION_MS: what is stored. */
  private history = new Observations('the green history', GREEN_HISTORY_MS);
  private persistence: (GreenPersistence & { savedAtMs: number; saving: boolean; unread: boolean }) | undefined;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly cluster: ClusterState,
    private readonly clock: Clock,
    /** The pending queue: while jobs of a pool wait for room, none of its jobs is deferred (see DeferralSettings.backlog). */
    pending?: PendingQueue,
    options: { log?: Logger; registry?: Registry } = {},
  ) {
    const log = (this.log = options.log ?? createLogger({ name: 'qy-green', level: 'silent' }));
    const headers = config.carbonHeadersFile ? fromSetting('QY_CARBON_HEADERS_FILE', () => loadHeaderFile(config.carbonHeadersFile!)) : undefined;
    this.live = new LiveCarbon({ url: config.carbonUrl, headers, subject: config.carbonSubject, pollMs: config.carbonPollMs, staleMs: config.carbonStaleMs, clock, log });
    this.published = config.carbonForecastUrl ? new PublishedForecast({ url: config.carbonForecastUrl, headers, pollMs: config.carbonForecastPollMs, clock, log }) : undefined;
    if (options.registry) new GreenMetrics(options.registry, () => this, clock);
    this.carbon = config.carbonFile ? fromSetting('QY_CARBON_FILE', () => loadCarbonSeries(config.carbonFile!, { column: config.carbonColumn, columnSetting: 'QY_CARBON_COLUMN' })) : undefined;
    // A published forecast is blended with the named forecaster, each weighed by its own measured error.
    const grid = { stepMs: config.greenStepMs };
    const own = makeForecaster(config.greenForecaster, grid);
    const published = this.published;
    const blended = published && blendWithPublished(own, grid, (nowMs) => published.at(nowMs));
    this.publishedMember = blended?.member;
    this.forecaster = blended?.forecaster ?? own;
    const forecaster = this.forecaster;
    this.planner = new DeferralPlanner({
      stepMs: config.greenStepMs,
      bookShare: config.greenDeferralShare,
      forecast: (_pool, fromMs, toMs) => this.planForecast(fromMs, toMs),
      supplyOf: (pool: Pool) => supplyUnits(pool, { nodes: cluster.nodesOf(pool).length, ...cluster.capacityOf(pool) }),
      // Until the forecaster has been scored that far ahead, a quarter of the signal's level, twice against a later window (see plannedError).
      errorOf: (_pool, aheadMs, against) => plannedError(forecaster, aheadMs, against),
      forecastVersion: () => this.observations,
      minGain: config.greenMinGain,
      backlog: pending && ((pool, jobId) => pending.queuedIn(pool) - (pending.has(jobId) && !pending.holdOf(jobId) ? 1 : 0)),
      rerunMargin: true,
      nodeMtbfMs: config.greenNodeMtbfHours === undefined ? undefined : config.greenNodeMtbfHours * HOUR_MS,
    });
  }

  /** The carbon intensity at a time, for metering: the live feed's while fresh, the file's, or the constant. */
  carbonAt(atMs: number): number {
    const live = this.live.fresh(atMs);
    if (live) return live.gPerKwh;
    return this.carbon ? this.carbon.valueAt(atMs) : this.config.carbonIntensityGPerKwh;
  }

  /** Where the signal comes from now, and the live feed's age (for /v1/pools and /v1/green). */
  source(nowMs: number): { source: 'live' | 'carbon-file' | 'green-share'; liveAgeSeconds?: number; liveStale?: boolean } {
    const age = this.live.ageMs(nowMs);
    const fresh = this.live.fresh(nowMs) !== undefined;
    const feed = this.live.configured ? { liveStale: !fresh, ...(age === undefined ? {} : { liveAgeSeconds: age / 1000 }) } : {};
    return { source: fresh ? 'live' : this.carbon ? 'carbon-file' : 'green-share', ...feed };
  }

  /** The signal deferral plans against, in gCO2/kWh (see the class). */
  signalAt(atMs: number): number {
    return this.knownSignalAt(atMs) ?? this.config.carbonIntensityGPerKwh;
  }

  /**
   * The signal, or undefined while nothing says what it is: no fresh feed, no file, and no node ready to
   * report its green share (a scheduler that has just started). Only a known signal is observed: a start
   * with no node yet would teach the forecaster, and store in the history, a spike to the whole grid intensity.
   */
  private knownSignalAt(atMs: number): number | undefined {
    const live = this.live.fresh(atMs);
    if (live) return live.gPerKwh;
    if (this.carbon) return this.carbon.valueAt(atMs);
    let share = 0;
    let nodes = 0;
    for (const node of this.cluster.nodes()) {
      if (node.state !== 'ready') continue;
      share += node.greenShare;
      nodes++;
    }
    return nodes > 0 ? (1 - share / nodes) * this.config.carbonIntensityGPerKwh : undefined;
  }

  /**
   * What was observed before this start, into the forecaster, a few milliseconds at a time: the signal stored
   * by the last replica that led (the last GREEN_HISTORY_MS before now), when `persistence` is given, then a
   * carbon file's values for the rest of that span. From then on this replica stores what it observes while
   * `persistence.saves()`. Call before `start`. Returns how many stored points were replayed; a history that
   * cannot be read is logged and skipped (the forecaster starts cold, as it would without one, or on the file
   * alone).
   */
  async restore(persistence?: GreenPersistence): Promise<number> {
    const p = persistence && (this.persistence = { ...persistence, savedAtMs: -Infinity, saving: false, unread: false as boolean });
    const stored = await p?.store.load().catch((err: Error) => {
      this.log.warn({ err: err.message }, 'the green history could not be read; the forecaster starts cold, and the history is read again before this replica stores its own');
      p.unread = true;
      return undefined;
    });
    const now = this.clock.now();
    const pace = pacer();
    let replayed = 0;
    for (const [atMs, value] of stored?.points ?? []) {
      // Only the past, in order (another replica's clock may be ahead of this one's).
      if (atMs >= now || atMs < now - GREEN_HISTORY_MS || atMs <= this.lastObservedMs) continue;
      this.observe(atMs, value);
      replayed++;
      await pace();
    }
    // A carbon file fills what the history lacks: a week for the daily profile and same time last week.
    const step = this.config.greenStepMs;
    let fromFile = 0;
    if (this.carbon) {
      for (let t = now - GREEN_HISTORY_MS; t < now; t += step) {
        if (t <= this.lastObservedMs) continue;
        this.observe(t);
        fromFile++;
        await pace();
      }
    }
    const kept = this.history.kept;
    this.log.info({ replayed, fromFile, since: kept.length > 0 ? new Date(kept[0].atMs).toISOString() : undefined, savedBy: stored?.savedBy }, 'green history restored');
    return replayed;
  }

  /** Observes the signal every step (after `restore`, for forecasts and their errors to start warm). */
  start(nc?: NatsConnection): void {
    this.live.start(nc);
    this.published?.start();
    const step = this.config.greenStepMs;
    const now = this.clock.now();
    // Until the signal is known (no feed, no file, no node ready yet), tried again every few seconds rather
    // than a step later: plans and the console would otherwise have no forecast, or a stale one, for a step.
    if (!this.observe(now)) {
      this.firstTry = this.clock.setInterval(() => {
        if (this.observe(this.clock.now())) this.firstTry?.cancel();
      }, Math.min(step, FIRST_OBSERVATION_RETRY_MS));
    }
    this.timer = this.clock.setInterval(() => {
      this.firstTry?.cancel();
      this.observe(this.clock.now());
      this.save();
    }, step);
  }

  /** Feeds the forecaster (and the history) a known signal; false when it is not known. */
  private observe(atMs: number, value = this.knownSignalAt(atMs)): boolean {
    if (value === undefined) return false;
    this.forecaster.observe(atMs, value);
    this.observations++;
    this.lastObservedMs = atMs;
    const kept = this.history.kept;
    if (kept.length === 0 || atMs - kept[kept.length - 1].atMs >= GREEN_HISTORY_RESOLUTION_MS) this.history.push(atMs, value);
    return true;
  }

  /** Stores the history now if this replica is the one that does (the service calls it as it takes up `general`). */
  saveNow(): void {
    this.save(true);
  }

  /**
   * Stores the history when this replica is the one that does, at most every GREEN_HISTORY_SAVE_EVERY_MS
   * unless `now`, one write at a time, and never an empty one. If the stored history could not be read at
   * start, it is read first and its points from before this replica's kept: a read that failed once does
   * not cost the days another replica observed.
   */
  private save(now = false): void {
    const p = this.persistence;
    const atMs = this.clock.now();
    if (!p || p.saving || this.history.kept.length === 0 || (!now && atMs - p.savedAtMs < GREEN_HISTORY_SAVE_EVERY_MS) || !p.saves()) return;
    p.saving = true;
    const from = atMs - GREEN_HISTORY_MS;
    const write = async () => {
      if (p.unread) {
        const stored = await p.store.load();
        const first = this.history.kept[0].atMs;
        const older = (stored?.points ?? []).filter(([t]) => t >= from && t < first);
        p.unread = false;
        if (older.length > 0) {
          const merged = new Observations('the green history', GREEN_HISTORY_MS);
          for (const [t, v] of older) merged.push(t, v);
          for (const pt of this.history.kept) merged.push(pt.atMs, pt.value);
          this.history = merged;
        }
      }
      const points = this.history.since(from).map((pt): [number, number] => [pt.atMs, pt.value]);
      await p.store.save({ v: 1, savedAtMs: atMs, savedBy: this.config.replicaId, points });
      p.savedAtMs = atMs;
    };
    write()
      .catch((err: Error) => this.log.warn({ err: err.message }, 'storing the green history failed; tried again at the next step'))
      .finally(() => {
        p.saving = false;
      });
  }

  /** What the forecaster has seen and how wrong it has been, per horizon (GET /v1/green). */
  forecasterView(): GreenView['forecaster'] {
    const oldest = this.history.since(this.clock.now() - GREEN_HISTORY_MS)[0];
    const errorsOf = (f: SkilledForecaster) => SCORED_HORIZONS_MS.map((h) => ({ aheadHours: h / HOUR_MS, gPerKwh: f.recentError(h, MIN_ERROR_SCORES) ?? null }));
    const member = this.publishedMember;
    const level = this.forecaster.level();
    return {
      name: this.config.greenForecaster,
      ...(oldest ? { observedSince: new Date(oldest.atMs).toISOString() } : {}),
      ...(level !== undefined ? { levelGPerKwh: level } : {}),
      errors: errorsOf(this.forecaster),
      ...(this.published && member ? { published: { aheadHours: this.published.aheadMs(this.clock.now()) / HOUR_MS, errors: errorsOf(member) } } : {}),
    };
  }

  /**
   * The forecast from `fromMs` to `toMs` (the value in force at `fromMs`, then the grid's points), cut from the
   * one made at the last observation: made again only after a new observation, or when asked further ahead.
   * Deferral plans against it, and GET /v1/green shows it.
   */
  planForecast(fromMs: number, toMs: number): Point[] {
    const madeAt = this.lastObservedMs;
    if (!Number.isFinite(madeAt)) return [];
    let ahead = this.ahead;
    if (!ahead || ahead.observations !== this.observations || ahead.toMs < toMs) {
      // At least a day further than asked: the next plans mostly look as far.
      const horizonMs = Math.max(toMs, fromMs) + DAY_MS - madeAt;
      this.ahead = ahead = { observations: this.observations, toMs: madeAt + horizonMs, points: this.forecaster.forecast(madeAt, horizonMs) };
    }
    const { points } = ahead;
    const first = lastIndexAtOrBefore(points, fromMs);
    if (first < 0) return [];
    const out: Point[] = [{ atMs: fromMs, value: points[first].value }];
    for (let i = first + 1; i < points.length && points[i].atMs <= toMs; i++) out.push(points[i]);
    return out;
  }

  stop(): void {
    this.firstTry?.cancel();
    this.timer?.cancel();
    this.live.stop();
    this.published?.stop();
  }
}
