import type { ClusterState, Hold, SchedJob } from '../core';
import type { Pool } from '../protocol';
import { DeferralBook, deferralMargin, inUseShare, planDeferral, poolDemand, WORK_MIX_MEMORY_MS, WorkMix, type DeferralShares, type WorkMixState } from './booking';
import type { ErrorAgainst } from './forecasters';
import { lastIndexAtOrBefore, type Point } from './series';

/** What a deferral planner needs: the grid of start times, the forecast of a pool's signal, and each pool's supply. */
export interface DeferralSettings {
  stepMs: number;
  /** Share of a pool deferred jobs may book in any one step: one for every pool, or per pool. */
  bookShare: number | DeferralShares;
  /** Forecast intensity of the pool's electricity from `fromMs` to `toMs`. */
  forecast(pool: Pool, fromMs: number, toMs: number): Point[];
  /** The pool's supply in the unit of poolDemand. */
  supplyOf(pool: Pool): number;
  /** The forecast's recent mean absolute error `aheadMs` ahead for the pool, as held against a later window or starting now (plannedError); absent (a perfect forecast): 0. */
  errorOf?(pool: Pool, aheadMs: number, against: ErrorAgainst): number;
  /** Changes whenever the forecast may have changed (a new observation): plans are revised only then. Absent: never revised. */
  forecastVersion?(): number | undefined;
  /** Plan starts early enough to run a job again after a node failure before its deadline (default true, as the pending queue escalates). */
  rerunMargin?: boolean;
  /** The nodes' mean time between failures, when known: plans leave room for more than one rerun where failures are frequent (rerunsFor). */
  nodeMtbfMs?: number;
  /**
   * Jobs of the pool waiting now for room to start (held ones and `jobId` itself not counted). While any
   * wait, nothing is deferred: the room a deferred job leaves now goes to them, so holding it moves no
   * energy out of this hour, and the job adds its own to a later one (a gang of GPUs started in a dirty
   * hour for a small job held for a clean one). Absent: 0.
   */
  backlog?(pool: Pool, jobId: string): number;
  /** Share of starting now's intensity a later start must save, besides the forecast's error (default {@link DEFAULT_MIN_GAIN}). */
  minGain?: number;
}

/**
 * A later start must be forecast to save at least this share of starting now's intensity (beyond the
 * forecast's error) before a job waits for it: what a forecast cannot see (released jobs queueing, a
 * rerun, co-located jobs drawing more) costs a little, and a nearly flat window is not worth a promise.
 */
export const DEFAULT_MIN_GAIN = 0.05;

/**
 * A held plan is kept while its forecast saving over starting now is above this share of the bar it had to
 * clear when planned: 0, kept while a newer forecast still expects its window to be greener than starting
 * now. A higher share dropped good plans on the next forecast's noise (the bar is deliberately high), and
 * every plan dropped at once sends a herd of jobs to start together.
 */
const KEEP_SHARE = 0;

/** A plan kept for revision: the job, its hold and what it booked. */
interface Planned {
  job: SchedJob;
  hold: Hold;
  durationMs: number;
  units: number;
}

/**
 * The PreEnqueue stage of temporal shifting (after "Let's Wait Awhile", Middleware 2021), for the service
 * and the simulator alike: a job that declares `deferrable` (a deadline or a longest delay) and how long it
 * runs is planned once, when first offered (planDeferral): it is held until the start within its window
 * whose forecast carbon intensity over its run is lowest, its safety margin (an hour and one more run)
 * before its latest start at the latest; it still waiting then, it is escalated ahead of every class, so
 * holding it never costs its deadline. Deferred jobs may book at most a share of their pool in any step: the
 * configured share, more while less than half the pool's recent work cannot wait, never more than the room
 * the pool's load and its swings leave free (bookingShare).
 *
 * The plan never backfires by design: when in doubt the job starts now, as green-blind scheduling would
 * start it. A later start must beat starting now by the forecast's recent error that far ahead, its error
 * now, and `minGain` of now's intensity (an error not yet measured is a quarter of the signal's level, taken
 * twice for the later window: plannedError); a step whose room
 * deferred work has booked is not planned, a full book never makes starting now look worse, and while jobs
 * of the pool wait for room nothing is deferred. When a newer forecast expects a held plan's window to be no
 * greener than starting now, `revise` plans the job again and the pipeline releases it: held again for a
 * new window, or started now, booked from now like deferred work (only as many as the book has room for; the
 * others keep their plans).
 */
export class DeferralPlanner {
  private readonly plans = new Map<string, Hold | null>();
  private readonly planned = new Map<string, Planned>();
  private readonly book: DeferralBook;
  private revisedAt: number | undefined;
  /** Each pool's recent work, for the share deferred work may book (see bookingShare). */
  private readonly mix = new WorkMix();
  /** Jobs the mix has counted and not yet forgotten. */
  private readonly counted = new Set<string>();

  constructor(private readonly settings: DeferralSettings) {
    this.book = new DeferralBook(settings.stepMs, settings.bookShare, (pool, configured, capacity) => this.mix.bookingShare(pool, configured, capacity));
  }

  /**
   * Counts jobs that arrived in the week before `nowMs` (the work mix's memory) in their pools' work mix,
   * without planning them: a warm start, so that a scheduler that restarts (or a simulation,
   * SimOptions.warmWork) knows its pools' load and swings at once rather than from its first hours (see
   * bookingShare). Only jobs that arrived after the pool's mix last counted one are added: the mix taken back
   * from a snapshot (restoreMix), or kept by a replica that rebuilds, holds the others already (a job that
   * arrived earlier but was first offered after that is not counted). Every job given is then known, so a
   * pending one is planned when next offered and not counted again.
   */
  warm(jobs: Iterable<SchedJob>, nowMs: number): void {
    const recent = [...jobs].filter((j) => !this.counted.has(j.id) && j.submittedAtMs <= nowMs && j.submittedAtMs > nowMs - WORK_MIX_MEMORY_MS);
    const through = new Map(recent.map((j) => [j.pool, this.mix.countedThrough(j.pool)]));
    for (const job of recent.sort((a, b) => a.submittedAtMs - b.submittedAtMs)) {
      this.counted.add(job.id);
      if (job.submittedAtMs > through.get(job.pool)!) this.mix.observe(job, job.submittedAtMs);
    }
  }

  /** The pools' work mix, for a snapshot (see WorkMix). */
  serializeMix(): Record<string, WorkMixState> {
    return this.mix.serialize();
  }

  /**
   * Takes the work mix back from a snapshot, before `warm` counts what arrived after it: a restarted scheduler
   * then knows its pools' week, not only the jobs memory still holds (ended ones are let go an hour after
   * they end, QY_JOB_RETENTION_MS).
   */
  restoreMix(state: Readonly<Record<string, WorkMixState>>): void {
    this.mix.restore(state);
  }

  /** The job's hold, planned on first sight; undefined when it may start now. */
  hold(job: SchedJob, nowMs: number): Hold | undefined {
    if (!this.counted.has(job.id)) {
      this.counted.add(job.id);
      this.mix.observe(job, nowMs);
    }
    if (!job.deferrable) return undefined;
    let plan = this.plans.get(job.id);
    if (plan === undefined) this.plans.set(job.id, (plan = this.plan(job, nowMs)));
    return plan && plan.untilMs > nowMs ? plan : undefined;
  }

  /**
   * Why a job released from its hold may not start yet: the book let deferred work take its share of the
   * pool above the pool's mean load, and when the pool's other work runs above its mean (a burst), released
   * work that started anyway would fill the room the burst needs. It waits then until the pool is back within
   * its mean load and deferred work's share, or until it is escalated (the pipeline does not ask then), so
   * the wait never costs its deadline. Jobs never held, and pools whose work mix is not known yet, are not held back.
   */
  admit(job: SchedJob, nowMs: number, cluster: ClusterState): string | undefined {
    const plan = this.plans.get(job.id);
    if (!plan || plan.untilMs > nowMs) return undefined;
    const supply = this.settings.supplyOf(job.pool);
    const mix = supply > 0 ? this.mix.of(job.pool, supply) : undefined;
    if (!mix) return undefined;
    const limit = mix.load + this.book.shareFor(job.pool, supply);
    const inUse = inUseShare(job.pool, cluster);
    if (inUse + poolDemand(job) / supply <= limit) return undefined;
    const pct = (x: number) => `${Math.round(x * 100)}%`;
    return `released at ${new Date(plan.untilMs).toISOString()}, waiting for room: its pool is ${pct(inUse)} in use, above the ${pct(limit)} its plan counted on (the pool's mean load and deferred work's share)`;
  }

  /** The job started or ended: its plan is no longer needed. */
  forget(jobId: string): void {
    this.counted.delete(jobId);
    this.plans.delete(jobId);
    this.planned.delete(jobId);
  }

  /**
   * Held jobs whose planned window a newer forecast expects to be no greener than starting now: they are
   * planned again from now, and the pipeline releases them (to be held again for a new window, or to start
   * now). One that would start now is booked from now, and only while the book has room; the others keep
   * their plans. Only when the forecast has changed since the last revision.
   */
  revise(nowMs: number): string[] {
    const version = this.settings.forecastVersion?.();
    if (version === undefined || version === this.revisedAt) return [];
    this.revisedAt = version;
    const given: string[] = [];
    const forecasts = new Map<Pool, Point[]>();
    // Over a copy: planning again adds to `planned`, and a Map visits entries added while it is iterated.
    for (const [jobId, p] of [...this.planned]) {
      if (p.hold.untilMs <= nowMs) {
        this.planned.delete(jobId);
        continue;
      }
      const pool = p.job.pool;
      let forecast = forecasts.get(pool);
      const needMs = p.hold.untilMs + p.durationMs;
      if (!forecast || forecast[forecast.length - 1].atMs < needMs) forecasts.set(pool, (forecast = this.settings.forecast(pool, nowMs, needMs + 6 * 3_600_000)));
      if (forecast.length === 0) continue;
      // Kept while a newer forecast still expects its window to beat starting now (see KEEP_SHARE).
      const nowMean = meanOver(forecast, nowMs, p.durationMs);
      const margin = deferralMargin(this.errorAt(pool), p.durationMs)?.(p.hold.untilMs - nowMs + p.durationMs / 2) ?? 0;
      const bar = margin + (this.settings.minGain ?? DEFAULT_MIN_GAIN) * Math.abs(nowMean);
      if (nowMean - meanOver(forecast, p.hold.untilMs, p.durationMs) > KEEP_SHARE * bar) continue;
      // Planned again from now: a later window (booked), or starting now. Starting now, it takes only room
      // deferred work may still book from now: plans given up together would otherwise start together,
      // unbooked, on top of the work released on plan then (in eval:green on 40 nodes, deferred work held up
      // to half the general pool against a share of a fifth). Without room the old plan stands: by this
      // forecast its window is no dirtier than starting now.
      this.book.unbook(pool, p.hold.untilMs, p.durationMs, p.units);
      this.planned.delete(jobId);
      const next = this.plan(p.job, nowMs);
      if (!next) {
        if (!this.book.fits(pool, this.settings.supplyOf(pool), p.units, nowMs, p.durationMs)) {
          this.book.book(pool, p.hold.untilMs, p.durationMs, p.units);
          this.planned.set(jobId, p);
          continue;
        }
        this.book.book(pool, nowMs, p.durationMs, p.units);
      }
      this.plans.set(jobId, next);
      given.push(jobId);
    }
    return given;
  }

  /** The share of a pool deferred jobs may book in a step now, as configured or raised by the pool's work mix (see bookingShare). */
  bookingShare(pool: Pool): number {
    return this.book.shareFor(pool, this.settings.supplyOf(pool));
  }

  /** Every plan, for a snapshot (null: planned to start at once). */
  serialize(): [string, Hold | null][] {
    return [...this.plans];
  }

  /** Takes plans back from a snapshot, so a restarted scheduler keeps the promises it made. */
  restore(plans: readonly (readonly [string, Hold | null])[]): void {
    for (const [jobId, plan] of plans) this.plans.set(jobId, plan);
  }

  /** Plans kept (jobs planned and not yet forgotten). */
  get size(): number {
    return this.plans.size;
  }

  private errorAt(pool: Pool): ((aheadMs: number, against: ErrorAgainst) => number) | undefined {
    const { errorOf } = this.settings;
    return errorOf && ((aheadMs, against) => errorOf(pool, aheadMs, against));
  }

  private plan(job: SchedJob, nowMs: number): Hold | null {
    this.book.prune(nowMs);
    const { settings } = this;
    if ((settings.backlog?.(job.pool, job.id) ?? 0) > 0) return null;
    const plan = planDeferral({
      job,
      nowMs,
      stepMs: settings.stepMs,
      forecast: (from, to) => settings.forecast(job.pool, from, to),
      book: this.book,
      supply: settings.supplyOf(job.pool),
      errorAt: this.errorAt(job.pool),
      minGain: settings.minGain ?? DEFAULT_MIN_GAIN,
      rerunMargin: settings.rerunMargin,
      nodeMtbfMs: settings.nodeMtbfMs,
    });
    if (!plan || plan.startMs <= nowMs) return null;
    const iso = (ms: number) => new Date(ms).toISOString();
    const hold: Hold = {
      untilMs: plan.startMs,
      escalateAtMs: plan.escalateAtMs,
      reason: `deferred for greener power until ${iso(plan.startMs)}: forecast ${Math.round(plan.expectedMean)} gCO2/kWh over its run, against ${Math.round(plan.nowMean)} if it started now (latest start ${iso(plan.latestStartMs)})`,
    };
    this.planned.set(job.id, { job, hold, durationMs: plan.durationMs, units: plan.units });
    return hold;
  }
}

/** Time-weighted mean of a step forecast over [fromMs, fromMs + durationMs] (the value at `fromMs` for a zero duration). */
function meanOver(forecast: readonly Point[], fromMs: number, durationMs: number): number {
  let i = Math.max(0, lastIndexAtOrBefore(forecast, fromMs));
  if (durationMs <= 0) return forecast[i].value;
  const endMs = fromMs + durationMs;
  let area = 0;
  for (let t = fromMs; t < endMs; i++) {
    const next = i + 1 < forecast.length ? Math.min(endMs, forecast[i + 1].atMs) : endMs;
    area += forecast[i].value * (next - t);
    t = next;
    if (i + 1 >= forecast.length) break;
  }
  return area / durationMs;
}
