import { POOLS, type Pool } from '../src/protocol';
import type { ClusterState, PendingQueue } from '../src/core';
import { DAY_MS, type Clock, type Timer } from '../src/time';
import { DeferralPlanner, MIN_ERROR_SCORES, lastIndexAtOrBefore, loadCarbonSeries, makeForecaster, supplyUnits, type Point, type Series, type SkilledForecaster } from '../src/green';
import { LiveCarbon } from '../src/green/live-carbon';
import type { NatsConnection } from '@nats-io/transport-node';
import { Gauge, type Registry } from 'prom-client';
import { createLogger, type Logger } from '../src/telemetry/logger';
import type { SchedulerConfig } from './config';

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
 * again after a node failure.
 */
export class GreenSignal {
  /** The grid's carbon intensity over time, when a file gives it. */
  readonly carbon: Series | undefined;
  /** The live feed, when one is configured. */
  readonly live: LiveCarbon;
  readonly forecaster: SkilledForecaster;
  /** Observations so far: the planner revises its plans when this changes. */
  private observations = 0;
  private lastObservedMs = -Infinity;
  /** The forecast made at the last observation, as far ahead as plans have asked since. */
  private ahead: { observations: number; toMs: number; points: Point[] } | undefined;
  readonly planner: DeferralPlanner;
  private timer: Timer | undefined;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly cluster: ClusterState,
    private readonly clock: Clock,
    /** The pending queue: while jobs of a pool wait for room, none of its jobs is deferred (see DeferralSettings.backlog). */
    pending?: PendingQueue,
    options: { log?: Logger; registry?: Registry } = {},
  ) {
    const log = options.log ?? createLogger({ name: 'qy-green', level: 'silent' });
    this.live = new LiveCarbon({ url: config.carbonUrl, subject: config.carbonSubject, pollMs: config.carbonPollMs, staleMs: config.carbonStaleMs, clock, log });
    if (options.registry) {
      const green = this;
      new Gauge({
        name: 'qy_green_signal_age_seconds',
        help: 'Age of the last reading of the live carbon feed (QY_CARBON_URL, QY_CARBON_SUBJECT); past QY_CARBON_STALE_MS the signal falls back. Absent without a feed or before its first reading.',
        registers: [options.registry],
        collect() {
          this.reset();
          const age = green.live.ageMs(clock.now());
          if (age !== undefined) this.set(age / 1000);
        },
      });
      new Gauge({
        name: 'qy_green_deferral_share',
        help: "Share of a pool deferred jobs may book in any step now: QY_GREEN_DEFERRAL_SHARE's, or more while less than half the pool's recent work cannot wait (up to the room its load leaves free).",
        labelNames: ['pool'],
        registers: [options.registry],
        collect() {
          for (const pool of POOLS) this.set({ pool }, green.planner.bookingShare(pool));
        },
      });
    }
    this.carbon = config.carbonFile ? loadCarbonSeries(config.carbonFile) : undefined;
    this.forecaster = makeForecaster(config.greenForecaster, { stepMs: config.greenStepMs });
    const forecaster = this.forecaster;
    this.planner = new DeferralPlanner({
      stepMs: config.greenStepMs,
      bookShare: config.greenDeferralShare,
      forecast: (_pool, fromMs, toMs) => this.planForecast(fromMs, toMs),
      supplyOf: (pool: Pool) => supplyUnits(pool, { nodes: cluster.nodesOf(pool).length, ...cluster.capacityOf(pool) }),
      // Until the forecaster has been scored that far ahead, nothing is deferred (its error is unknown).
      errorOf: (_pool, aheadMs) => forecaster.recentError(aheadMs, MIN_ERROR_SCORES) ?? Infinity,
      forecastVersion: () => this.observations,
      minGain: config.greenMinGain,
      backlog: pending && ((pool, jobId) => pending.queuedIn(pool) - (pending.has(jobId) && !pending.holdOf(jobId) ? 1 : 0)),
      rerunMargin: true,
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
    return (1 - (nodes > 0 ? share / nodes : 0)) * this.config.carbonIntensityGPerKwh;
  }

  /** Observes the signal every step; a carbon file also gives the two days before, so forecasts (and their errors) start at once. */
  start(nc?: NatsConnection): void {
    this.live.start(nc);
    const step = this.config.greenStepMs;
    const now = this.clock.now();
    if (this.carbon) for (let t = now - 2 * DAY_MS; t < now; t += step) this.observe(t);
    this.observe(now);
    this.timer = this.clock.setInterval(() => this.observe(this.clock.now()), step);
  }

  private observe(atMs: number): void {
    this.forecaster.observe(atMs, this.signalAt(atMs));
    this.observations++;
    this.lastObservedMs = atMs;
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
    this.timer?.cancel();
    this.live.stop();
  }
}
