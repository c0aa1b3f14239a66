import type { Pool } from '../protocol';
import { gridFrom, plannedError, valueAtOrBefore, type ErrorAgainst, type Point, type SkilledForecaster } from '../green';
import type { SimEnvironment } from './cluster-file';

/** How far ahead the live forecast of the grid is made at each observation (the longest window planned in). */
const LIVE_HORIZON_MS = 72 * 3_600_000;

/**
 * What the simulator's deferral planner sees of a pool's carbon intensity ahead: the zones' own green share
 * (a contracted hourly profile, known ahead) times the grid's intensity, which is either the recorded future
 * (no forecaster: an oracle) or a live forecaster's forecast, fed the grid's intensity at every step of the
 * signals and knowing nothing of what comes after.
 */
export class SimGreenForecast {
  private version = 0;
  private grid: Point[] = [];
  private gridAtMs = -Infinity;
  private lastObservedMs = -Infinity;

  constructor(
    private readonly env: SimEnvironment,
    /** The zones of a pool, each weighted by its share of the pool's nodes. */
    private readonly zonesOf: (pool: Pool) => readonly (readonly [string, number])[],
    private readonly live: SkilledForecaster | undefined,
  ) {}

  /** The grid's intensity is observed at `nowMs` (a live forecaster learns it; after its warm-up, in time order). */
  observe(nowMs: number): void {
    if (!this.live || nowMs <= this.lastObservedMs) return;
    this.live.observe(nowMs, this.env.gridCarbonAt(nowMs));
    this.lastObservedMs = nowMs;
    this.version++;
  }

  /** Changes at every observation (plans are revised then); undefined for the oracle, whose forecast never changes. */
  forecastVersion(): number | undefined {
    return this.live ? this.version : undefined;
  }

  /** The pool's carbon intensity from `fromMs` to `toMs` on the signals' grid. */
  forecast(pool: Pool, fromMs: number, toMs: number): Point[] {
    const zones = this.zonesOf(pool);
    const grid = this.gridAt(fromMs);
    if (!grid) return [];
    const at = (t: number) => zones.reduce((sum, [zone, weight]) => sum + weight * (1 - this.env.greenShareAt(zone, t)) * grid(t), 0);
    return gridFrom(fromMs, toMs, this.env.stepMs).map((t) => ({ atMs: t, value: at(t) }));
  }

  /** The error held against the forecast `aheadMs` ahead, in the pool's intensity (see plannedError); 0 for the oracle. */
  errorOf(pool: Pool, nowMs: number, aheadMs: number, against: ErrorAgainst): number {
    if (!this.live) return 0;
    const error = plannedError(this.live, aheadMs, against);
    if (!Number.isFinite(error)) return Infinity;
    const t = nowMs + aheadMs;
    return this.zonesOf(pool).reduce((sum, [zone, weight]) => sum + weight * (1 - this.env.greenShareAt(zone, t)), 0) * error;
  }

  /** The grid's intensity ahead as known at `fromMs`. */
  private gridAt(fromMs: number): ((t: number) => number) | undefined {
    if (!this.live) return (t) => this.env.gridCarbonAt(t);
    if (this.gridAtMs !== this.lastObservedMs) {
      this.grid = this.live.forecast(this.lastObservedMs, LIVE_HORIZON_MS);
      this.gridAtMs = this.lastObservedMs;
    }
    const grid = this.grid;
    if (grid.length === 0 || fromMs < this.gridAtMs) return undefined;
    return (t) => valueAtOrBefore(grid, t);
  }
}
