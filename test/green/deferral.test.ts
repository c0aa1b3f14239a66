import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, ESCALATED_PRIORITY, MAX_RERUNS, PendingQueue, RERUN_RISK, SchedulingPipeline, byPriorityThenSubmitTime, rerunsFor } from '../../src/core';
import { bookingShare, DeferralPlanner, formatDeferralShares, parseDeferralShares, SWING_SDS, WorkMix, type DeferralShares, type Forecaster } from '../../src/green';
import { job, nodeSpec } from '../core/fixtures';

const HOUR = 3_600_000;
const STEP = 15 * 60_000;

/** A forecaster of a given intensity profile, by hours from time 0. */
function profile(valueAt: (ms: number) => number): Forecaster {
  return {
    forecast(nowMs, horizonMs) {
      const out = [{ atMs: nowMs, value: valueAt(nowMs) }];
      for (let t = Math.floor(nowMs / STEP) * STEP + STEP; t <= nowMs + horizonMs; t += STEP) out.push({ atMs: t, value: valueAt(t) });
      return out;
    },
  };
}

function planner(valueAt: (ms: number) => number, settings: { bookShare?: number | DeferralShares; supply?: number } = {}) {
  const forecaster = profile(valueAt);
  return new DeferralPlanner({ stepMs: STEP, bookShare: settings.bookShare ?? 1, supplyOf: () => settings.supply ?? 10_000, forecast: (_pool, from, to) => forecaster.forecast(from, to - from) });
}

const deferrable = (id: string, extra: Parameters<typeof job>[0] = {}) => job({ id, durationSeconds: 3600, deferrable: { maxDelaySeconds: 8 * 3600 }, ...extra });

describe('green deferral', () => {
  test('a deferrable job is held for the greenest window of its run, then released', () => {
    // Dirty now, clean from 03:00 to 05:00.
    const d = planner((ms) => (ms >= 3 * HOUR && ms < 5 * HOUR ? 100 : 500));
    const j = deferrable('a');
    const hold = d.hold(j, 0)!;
    expect(hold.untilMs).toBe(3 * HOUR);
    // Released at 03:00, it is escalated at its latest start (08:00) less the safety margin (an hour, and an hour's rerun) if it still waits.
    expect(hold.escalateAtMs).toBe(6 * HOUR);
    expect(hold.reason).toMatch(/^deferred for greener power until 1970-01-01T03:00:00.000Z: forecast 100 gCO2\/kWh over its run, against 500 if it started now \(latest start 1970-01-01T08:00:00.000Z\)$/);
    expect(d.hold(j, 3 * HOUR)).toBeUndefined();
  });

  test('jobs that are not deferrable, or do not say how long they run, are never held', () => {
    const d = planner(() => 500);
    expect(d.hold(job({ id: 'plain' }), 0)).toBeUndefined();
    expect(d.hold(job({ id: 'open-ended', deferrable: { maxDelaySeconds: 3600 } }), 0)).toBeUndefined();
  });

  test('a job that needs a large part of its pool is not held', () => {
    const d = planner((ms) => (ms >= 3 * HOUR ? 100 : 500), { supply: 64 });
    expect(d.hold(deferrable('big', { resources: { cpuMillis: 16_000, memBytes: 0 } }), 0)).toBeUndefined();
    expect(d.hold(deferrable('small', { resources: { cpuMillis: 2000, memBytes: 0 } }), 0)).toBeDefined();
  });

  test('deferred jobs book their pool, so they do not all start in the same greenest step', () => {
    const d = planner((ms) => (ms >= 3 * HOUR && ms < 4 * HOUR ? 100 : 500), { bookShare: 0.3, supply: 100 });
    // Each job needs 1 core of 100 for an hour; 30 fit in the clean hour, the rest go elsewhere.
    const starts = Array.from({ length: 40 }, (_, i) => d.hold(deferrable(`j${i}`, { resources: { cpuMillis: 1000, memBytes: 0 } }), 0)?.untilMs ?? 0);
    expect(starts.filter((t) => t === 3 * HOUR)).toHaveLength(30);
  });

  test('a share per pool: a pool given 0 defers nothing, the others book their own share', () => {
    const d = planner((ms) => (ms >= 3 * HOUR && ms < 4 * HOUR ? 100 : 500), { bookShare: parseDeferralShares('0.3,intelligent=0,super=0.1'), supply: 100 });
    const one = (id: string, pool: 'general' | 'intelligent' | 'super') => deferrable(id, { pool, resources: { cpuMillis: 1000, memBytes: 0 } });
    expect(d.hold(deferrable('gpu', { pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 0, gpus: 1 } }), 0)).toBeUndefined();
    expect(d.hold(one('cpu-only', 'intelligent'), 0)).toBeUndefined();
    const general = Array.from({ length: 40 }, (_, i) => d.hold(one(`g${i}`, 'general'), 0)?.untilMs ?? 0);
    expect(general.filter((t) => t === 3 * HOUR)).toHaveLength(30);
    // super's units are nodes: 10 of 100 in the clean hour.
    const hpc = Array.from({ length: 20 }, (_, i) => d.hold(one(`s${i}`, 'super'), 0)?.untilMs ?? 0);
    expect(hpc.filter((t) => t === 3 * HOUR)).toHaveLength(10);
  });

  test('the share deferred work may book grows where most of the pool\'s work can wait, to the room its load leaves free', () => {
    // Half or more of the work cannot wait: as configured.
    expect(bookingShare(0.2, 0.6, 0.5)).toBe(0.2);
    expect(bookingShare(0.2, 0.6, 0.9)).toBe(0.2);
    // Nothing cannot wait: the room a load of 0.6 leaves.
    expect(bookingShare(0.2, 0.6, 0)).toBeCloseTo(0.4);
    expect(bookingShare(0.2, 0.6, 0.25)).toBeCloseTo(0.2);
    expect(bookingShare(0.1, 0.2, 0.25)).toBeCloseTo(0.4);
    // Never above the room the load leaves, even where configured higher; an overloaded pool books nothing; 0 stays 0.
    expect(bookingShare(0.5, 0.6, 0)).toBeCloseTo(0.4);
    expect(bookingShare(0.2, 1.3, 0)).toBe(0);
    expect(bookingShare(0.2, 0, 0)).toBe(1);
    expect(bookingShare(0, 0.1, 0)).toBe(0);
  });

  test('where work cannot wait, deferred work leaves free two and a half standard deviations of the pool\'s swings', () => {
    expect(SWING_SDS).toBe(2.5);
    // A load of 0.6 swinging by 4%: 1 - 0.6 - 2.5 × 0.04 = 0.3 of room, the configured fifth fits.
    expect(bookingShare(0.2, 0.6, 0.5, 0.04)).toBe(0.2);
    // Swinging by 12% (a small pool): 1 - 0.6 - 0.3 = 0.1.
    expect(bookingShare(0.2, 0.6, 0.5, 0.12)).toBeCloseTo(0.1);
    // By 20%: no room at all.
    expect(bookingShare(0.2, 0.6, 0.5, 0.2)).toBe(0);
    // The swings count as far as there is work that cannot wait: a quarter of it, half the swings.
    expect(bookingShare(0.3, 0.6, 0.25, 0.12)).toBeCloseTo(0.25);
    expect(bookingShare(0.3, 0.6, 0.5, 0.12)).toBeCloseTo(0.1);
    // None: the room the load leaves, whatever the swings.
    expect(bookingShare(0.2, 0.6, 0, 0.2)).toBeCloseTo(0.4);
  });

  test('the booking share stays within the room the load leaves, takes the configured share where the swings leave room for it, and shrinks as the load, the swings or the work that cannot wait grow (property)', () => {
    const share = fc.double({ min: 0, max: 1, noNaN: true });
    fc.assert(
      fc.property(share, fc.double({ min: 0, max: 3, noNaN: true }), share, fc.double({ min: 0, max: 0.5, noNaN: true }), share, (configured, load, cannotWait, swing, more) => {
        const s = bookingShare(configured, load, cannotWait, swing);
        if (configured === 0) {
          expect(s).toBe(0);
          return;
        }
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(Math.max(0, 1 - load) + 1e-12);
        const room = 1 - load - SWING_SDS * swing * Math.min(1, 2 * cannotWait);
        expect(s).toBeGreaterThanOrEqual(Math.min(configured, Math.max(0, room)) - 1e-12);
        expect(bookingShare(configured, load + more, cannotWait, swing)).toBeLessThanOrEqual(s + 1e-12);
        expect(bookingShare(configured, load, Math.min(1, cannotWait + more), swing)).toBeLessThanOrEqual(s + 1e-12);
        expect(bookingShare(configured, load, cannotWait, swing + more)).toBeLessThanOrEqual(s + 1e-12);
      }),
      { numRuns: 500 },
    );
  });

  test('the work mix measures a pool\'s load and its swings: the same work on a small pool books nothing, on a large one the configured fifth', () => {
    // A day of 8-core jobs of an hour, half of them deferrable, at 0.6 of the pool; seen before the planner's first job.
    const shareAfterADay = (cores: number) => {
      const d = planner(() => 500, { bookShare: 0.2, supply: cores });
      const perHour = (0.6 * cores) / 8;
      const gapMs = HOUR / perHour;
      const day = Array.from({ length: Math.ceil((24 * HOUR) / gapMs) }, (_, i) => {
        const spec = { id: `w${i}`, submittedAtMs: i * gapMs, durationSeconds: 3600, resources: { cpuMillis: 8000, memBytes: 0 } };
        return i % 2 === 0 ? job(spec) : job({ ...spec, deferrable: { maxDelaySeconds: 8 * 3600 } });
      });
      d.warm(day.reverse(), 24 * HOUR);
      return d.bookingShare('general');
    };
    // 100 cores: 7.5 jobs an hour; the occupancy's variance is 7.5 × 8² core², its sd 22% of the pool: no room.
    expect(shareAfterADay(100)).toBe(0);
    // 10,000 cores: the sd is 2.2%, the room 1 - 0.6 - 2.5 × 0.022 ≈ 0.35.
    expect(shareAfterADay(10_000)).toBe(0.2);
    const mix = new WorkMix();
    for (let i = 0; i < 24 * 60; i++) mix.observe(job({ id: `m${i}`, submittedAtMs: i * 60_000, durationSeconds: 3600, resources: { cpuMillis: 2000, memBytes: 0 } }), i * 60_000);
    // 60 jobs of 2 cores an hour on 200 cores: a load of 0.6, an occupancy of variance 60 × 2² (sd 15.5 cores).
    const seen = mix.of('general', 200)!;
    expect(seen.load).toBeCloseTo(0.6, 2);
    expect(seen.cannotWait).toBe(1);
    expect(seen.swing).toBeCloseTo(Math.sqrt(60 * 4) / 200, 3);
  });

  test('a restarted planner goes on from the work mix of its snapshot and counts only what arrived after it; one that rebuilds counts nothing twice', () => {
    // Two days of 8-core jobs of an hour on 1,000 cores: a load of 0.7 for 36 hours, then 0.3. Each job is
    // offered on arrival and starts at once (forgotten, as the service forgets a job placed).
    const jobs: ReturnType<typeof job>[] = [];
    for (let atMs = 0, i = 0; atMs < 48 * HOUR; i++) {
      jobs.push(job({ id: `r${i}`, submittedAtMs: atMs, durationSeconds: 3600, resources: { cpuMillis: 8000, memBytes: 0 } }));
      atMs += HOUR / (((atMs < 36 * HOUR ? 0.7 : 0.3) * 1000) / 8);
    }
    const live = planner(() => 500, { bookShare: 0.2, supply: 1000 });
    let snapshot: ReturnType<DeferralPlanner['serializeMix']> | undefined;
    for (const j of jobs) {
      if (!snapshot && j.submittedAtMs >= 40 * HOUR) snapshot = live.serializeMix();
      expect(live.hold(j, j.submittedAtMs)).toBeUndefined();
      live.forget(j.id);
    }
    const load = (d: DeferralPlanner) => {
      const mix = new WorkMix();
      mix.restore(d.serializeMix());
      return mix.of('general', 1000)!.load;
    };
    // What memory holds at 48:00: the jobs of the last 8 hours (the others ended and were let go).
    const held = jobs.filter((j) => j.submittedAtMs >= 40 * HOUR - HOUR);
    const restarted = planner(() => 500, { bookShare: 0.2, supply: 1000 });
    restarted.restoreMix(snapshot!);
    restarted.warm(held, 48 * HOUR);
    expect(load(restarted)).toBeCloseTo(load(live), 6);
    expect(restarted.bookingShare('general')).toBeCloseTo(live.bookingShare('general'), 6);
    // Without the snapshot's mix, the last 8 hours read as the pool's load: 0.3 where the week says more.
    const cold = planner(() => 500, { bookShare: 0.2, supply: 1000 });
    cold.warm(held, 48 * HOUR);
    expect(load(cold)).toBeCloseTo(0.3, 1);
    expect(load(live)).toBeGreaterThan(0.55);
    // A replica that rebuilds keeps its own mix: warming it with what memory holds counts nothing again,
    // and a snapshot older than its own mix does not replace it.
    const before = live.serializeMix();
    live.restoreMix(snapshot!);
    live.warm(held, 48 * HOUR);
    expect(live.serializeMix()).toEqual(before);
  });

  test('a pool whose recent work can all wait books more of a green hour than the configured share; with half that cannot wait, the configured share', () => {
    const booked = (cannotWaitEvery: number) => {
      const d = planner((ms) => (ms >= 26 * HOUR && ms < 27 * HOUR ? 100 : 500), { bookShare: 0.2, supply: 100 });
      // A day of arrivals, 240 jobs of a quarter core for an hour each hour (a load of 0.6, swinging by 4%),
      // each allowed to start only 10 minutes late (never held); every `cannotWaitEvery`-th one is not
      // deferrable at all.
      for (let i = 0; i < 24 * 240; i++) {
        const atMs = i * 15_000;
        const spec = { submittedAtMs: atMs, durationSeconds: 3600, resources: { cpuMillis: 250, memBytes: 0 } };
        const j = i % cannotWaitEvery === 0 ? job({ id: `a${i}`, ...spec }) : job({ id: `a${i}`, ...spec, deferrable: { maxDelaySeconds: 600 } });
        expect(d.hold(j, atMs)).toBeUndefined();
      }
      const share = d.bookingShare('general');
      const starts = Array.from({ length: 60 }, (_, i) => d.hold(deferrable(`g${i}`, { submittedAtMs: 24 * HOUR, resources: { cpuMillis: 1000, memBytes: 0 } }), 24 * HOUR)?.untilMs);
      return { share, inCleanHour: starts.filter((t) => t === 26 * HOUR).length };
    };
    const allCanWait = booked(Number.MAX_SAFE_INTEGER);
    expect(allCanWait.share).toBeCloseTo(0.4, 1);
    // The 60 arrivals at 24:00 raise the load it sees as they come: between the configured 20 and 40.
    expect(allCanWait.inCleanHour).toBeGreaterThan(30);
    expect(allCanWait.inCleanHour).toBeLessThanOrEqual(40);
    const half = booked(2);
    expect(half.share).toBe(0.2);
    expect(half.inCleanHour).toBe(20);
  });

  test('the work mix is not trusted before it has watched a pool for an hour', () => {
    const d = planner(() => 500, { bookShare: 0.2, supply: 100 });
    for (let i = 0; i < 50; i++) d.hold(deferrable(`a${i}`, { submittedAtMs: i * 60_000 }), i * 60_000);
    expect(d.bookingShare('general')).toBe(0.2);
    d.hold(deferrable('later', { submittedAtMs: HOUR }), HOUR);
    expect(d.bookingShare('general')).toBeGreaterThan(0.2);
  });

  test('deferral shares as operators write them, and what is refused', () => {
    expect(parseDeferralShares('0.2')).toEqual({ default: 0.2, pools: {} });
    expect(parseDeferralShares('0.2, intelligent=0')).toEqual({ default: 0.2, pools: { intelligent: 0 } });
    expect(parseDeferralShares('general=0.1,super=0')).toEqual({ default: 0.2, pools: { general: 0.1, super: 0 } });
    expect(formatDeferralShares(parseDeferralShares('super=0,0.3,general=0.1'))).toBe('0.3,general=0.1,super=0');
    expect(() => parseDeferralShares('1.5')).toThrow(/"1.5": a share must be a number from 0 to 1/);
    expect(() => parseDeferralShares('gpu=0.1')).toThrow(/unknown pool gpu \(known: general, intelligent, super\)/);
    expect(() => parseDeferralShares('0.1,0.2')).toThrow(/more than one share without a pool/);
    expect(() => parseDeferralShares('general=0.1,general=0.2')).toThrow(/pool general named twice/);
    expect(() => parseDeferralShares('0.2,')).toThrow(/an empty item/);
    expect(() => parseDeferralShares('general=')).toThrow(/a share must be a number from 0 to 1/);
    expect(() => parseDeferralShares('general=0.1=0.5')).toThrow(/"general=0.1=0.5": a share must be a number from 0 to 1/);
  });

  test('the planned start is never after the latest start, so a declared duration meets its deadline (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 900 }), { minLength: 96, maxLength: 96 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 24 }), (values, runHours, slackHours) => {
        const d = planner((ms) => values[Math.min(values.length - 1, Math.floor(ms / STEP))]);
        const deadlineMs = (runHours + slackHours) * HOUR;
        const j = job({ id: 'dl', durationSeconds: runHours * 3600, deferrable: { deadlineMs } });
        const hold = d.hold(j, 0);
        const start = hold?.untilMs ?? 0;
        // The escalation comes between the planned start and the latest start.
        if (hold) expect(hold.escalateAtMs!).toBeGreaterThanOrEqual(start);
        if (hold) expect(hold.escalateAtMs! + runHours * HOUR).toBeLessThanOrEqual(deadlineMs);
        expect(start).toBeGreaterThanOrEqual(0);
        expect(start + runHours * HOUR).toBeLessThanOrEqual(deadlineMs);
      }),
      { numRuns: 300 },
    );
  });

  test('the pipeline holds a deferred job out of the queue until its planned start, then escalates it if it still waits', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n1', { capacity: { cpuMillis: 1000, memBytes: 1 << 30 } }));
    const pending = new PendingQueue();
    const placed: string[] = [];
    const d = planner((ms) => (ms >= 3 * HOUR ? 100 : 500));
    const pipeline = new SchedulingPipeline(cluster, pending, { policy: DEFAULT_POLICY, order: () => byPriorityThenSubmitTime }, { hold: d, bind: (j, placement) => (cluster.reserve(placement), placed.push(j.id)) });
    // A blocker holds the only core, so the deferred job, once released, has to wait.
    pending.add(job({ id: 'blocker', resources: { cpuMillis: 1000, memBytes: 0 } }));
    pending.add(deferrable('green', { resources: { cpuMillis: 1000, memBytes: 0 } }));
    pipeline.cycle(0);
    expect(placed).toEqual(['blocker']);
    expect(pending.holdOf('green')?.untilMs).toBe(3 * HOUR);
    expect(pipeline.nextWakeMs()).toBe(3 * HOUR);
    expect(pipeline.wake(3 * HOUR - 1).size).toBe(0);
    expect(pending.queuedIn('general')).toBe(0);
    expect([...pipeline.wake(3 * HOUR)]).toEqual(['general']);
    pipeline.cycle(3 * HOUR);
    expect(pending.whyWaiting('green')?.failure).toBeDefined();
    expect(pipeline.nextWakeMs()).toBe(6 * HOUR);
    pipeline.wake(6 * HOUR);
    expect(pending.get('green')?.priority).toBe(ESCALATED_PRIORITY);
  });

  /** A day of work that cannot wait: 16 one-core jobs of two hours every hour, a mean load of 32 cores. */
  const pastDay = () => Array.from({ length: 24 * 16 }, (_, i) => job({ id: `past${i}`, submittedAtMs: Math.floor(i / 16) * HOUR + 1 + (i % 16), durationSeconds: 2 * 3600, resources: { cpuMillis: 1000, memBytes: 0 } }));
  const DAY = 24 * HOUR;

  /**
   * One 64-core node after a day of work that cannot wait at half of it (deferred work may book a fifth
   * more, so a released job starts while 70% or less is in use); a deferrable job held at 24:00 for the
   * clean hours from 27:00; then, at 25:00, a burst of work that cannot wait takes 48 of the 64 cores (75%).
   */
  function heldThroughABurst() {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n1', { capacity: { cpuMillis: 64_000, memBytes: 1 << 30 } }));
    const pending = new PendingQueue();
    const placed: string[] = [];
    const d = planner((ms) => (ms >= DAY + 3 * HOUR && ms < DAY + 5 * HOUR ? 100 : 500), { bookShare: 0.2, supply: 64 });
    d.warm(pastDay(), DAY);
    const pipeline = new SchedulingPipeline(cluster, pending, { policy: DEFAULT_POLICY, order: () => byPriorityThenSubmitTime }, { hold: d, bind: (j, placement) => (cluster.reserve(placement), placed.push(j.id)) });
    pending.add(deferrable('green', { submittedAtMs: DAY, resources: { cpuMillis: 2000, memBytes: 0 } }));
    pipeline.cycle(DAY);
    expect(pending.holdOf('green')?.untilMs).toBe(DAY + 3 * HOUR);
    pending.add(job({ id: 'burst', submittedAtMs: DAY + HOUR, resources: { cpuMillis: 48_000, memBytes: 0 } }));
    pipeline.cycle(DAY + HOUR);
    expect(placed).toEqual(['burst']);
    return { cluster, pending, placed, pipeline };
  }

  test('a released job waits while its pool is busier than its plan counted on (its mean load and the share), until it is escalated', () => {
    const { cluster, pending, placed, pipeline } = heldThroughABurst();
    // Released into the clean hours, it would fit (16 cores are free) but the burst is still on: it waits.
    pipeline.wake(DAY + 3 * HOUR);
    pipeline.cycle(DAY + 3 * HOUR);
    expect(placed).toEqual(['burst']);
    expect(pending.whyWaiting('green')?.reason).toMatch(/^released at 1970-01-02T03:00:00.000Z, waiting for room: its pool is 75% in use, above the \d+% its plan counted on/);
    // A job never held is never held back: work that cannot wait takes the room.
    pending.add(job({ id: 'plain', submittedAtMs: DAY + 3 * HOUR, resources: { cpuMillis: 4000, memBytes: 0 } }));
    pipeline.cycle(DAY + 3 * HOUR);
    expect(placed).toEqual(['burst', 'plain']);
    // The burst ends: the released job starts.
    cluster.release('burst');
    pending.markDirty('general');
    pipeline.cycle(DAY + 3 * HOUR + 60_000);
    expect(placed).toEqual(['burst', 'plain', 'green']);
  });

  test('a released job held back by a busy pool still starts once it is escalated: the wait never costs its deadline', () => {
    const { pending, placed, pipeline } = heldThroughABurst();
    const escalateAtMs = pending.holdOf('green')!.escalateAtMs!;
    pipeline.wake(DAY + 3 * HOUR);
    pipeline.cycle(DAY + 3 * HOUR);
    expect(placed).toEqual(['burst']);
    pipeline.wake(escalateAtMs);
    expect(pending.get('green')?.priority).toBe(ESCALATED_PRIORITY);
    pipeline.cycle(escalateAtMs);
    expect(placed).toEqual(['burst', 'green']);
  });

  test('a job waits only for a saving larger than the forecast\'s recent error that far ahead, its error now, and 5 % of now', () => {
    // Now 500, from 03:00 on 400: a saving of 100 three hours ahead; the bar is twice a flat error (the window may be dirtier, now cleaner) plus 25.
    const valueAt = (ms: number) => (ms >= 3 * HOUR ? 400 : 500);
    const withError = (error: number) => {
      const forecaster = profile(valueAt);
      return new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), errorOf: () => error });
    };
    expect(withError(35).hold(deferrable('sure'), 0)?.untilMs).toBe(3 * HOUR);
    expect(withError(40).hold(deferrable('unsure'), 0)).toBeUndefined();
    // An error of a quarter of now's level (125): the bar is 275, a saving of 100 is not enough, one of 450 is.
    expect(withError(0.25 * 500).hold(deferrable('cold'), 0)).toBeUndefined();
    const large = (error: number) => {
      const forecaster = profile((ms) => (ms >= 3 * HOUR ? 50 : 500));
      return new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), errorOf: () => error });
    };
    expect(large(0.25 * 500).hold(deferrable('cold-large'), 0)?.untilMs).toBe(3 * HOUR);
    // An error not yet known (Infinity) defers nothing.
    expect(withError(Infinity).hold(deferrable('unknown'), 0)).toBeUndefined();
    // An error that grows with the horizon favours a nearer, smaller saving over a farther, larger one.
    const forecaster = profile((ms) => (ms >= 6 * HOUR ? 300 : ms >= 2 * HOUR ? 380 : 500));
    const growing = new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), errorOf: (_pool, aheadMs) => (aheadMs / HOUR) * 24 });
    expect(growing.hold(deferrable('near'), 0)?.untilMs).toBe(2 * HOUR);
  });

  test('a held job whose window a newer forecast makes no better than now is released and planned again', () => {
    let version = 0;
    let cleanFrom = 3 * HOUR;
    const forecaster = profile((ms) => (ms >= cleanFrom && ms < cleanFrom + 2 * HOUR ? 100 : 500));
    const d = new DeferralPlanner({ stepMs: STEP, bookShare: 0.05, supplyOf: () => 40, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), forecastVersion: () => version });
    const a = deferrable('a', { resources: { cpuMillis: 1000, memBytes: 0 } });
    const b = deferrable('b', { resources: { cpuMillis: 1000, memBytes: 0 } });
    expect(d.hold(a, 0)?.untilMs).toBe(3 * HOUR);
    expect(d.hold(b, 0)?.untilMs).toBe(3 * HOUR);
    // Nothing changed since: nothing is revised.
    expect(d.revise(HOUR)).toEqual([]);
    // The clean hours move to 05:00: 03:00 is now as dirty as starting now.
    cleanFrom = 5 * HOUR;
    version++;
    expect(d.revise(HOUR)).toEqual(['a', 'b']);
    expect(d.revise(HOUR)).toEqual([]);
    // Planned again, each from now, and its old booking given back (both fit in the book's share again).
    expect(d.hold(a, HOUR)?.untilMs).toBe(5 * HOUR);
    expect(d.hold(b, HOUR)?.untilMs).toBe(5 * HOUR);
    // A forecast that keeps the window better than now keeps the plan.
    version++;
    expect(d.revise(2 * HOUR)).toEqual([]);
  });

  test('plans given up together start now only as far as the book has room from now; the others keep their plans', () => {
    let version = 0;
    let dirty = true;
    // Clean from 03:00 to 05:00; later, a forecast where every hour is alike (starting now is as good).
    const forecaster = profile((ms) => (!dirty ? 300 : ms >= 3 * HOUR && ms < 5 * HOUR ? 100 : 500));
    // Deferred work may hold 4 of 40 cores in any step: four one-core jobs fit in a window.
    const d = new DeferralPlanner({ stepMs: STEP, bookShare: 0.1, supplyOf: () => 40, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), forecastVersion: () => version });
    // As much work that cannot wait as the deferrable jobs below bring, so the share stays as configured (see bookingShare).
    for (let i = 0; i < 10; i++) expect(d.hold(job({ id: `plain${i}`, durationSeconds: 3600, resources: { cpuMillis: 1000, memBytes: 0 } }), 0)).toBeUndefined();
    const jobs = ['a', 'b', 'c', 'd'].map((id) => deferrable(id, { resources: { cpuMillis: 1000, memBytes: 0 } }));
    for (const j of jobs) expect(d.hold(j, 0)?.untilMs).toBe(3 * HOUR);
    // Two more, planned at 01:00 into the room left from then on (the first four hold 03:00 to 04:00).
    const early = ['e', 'f'].map((id) => deferrable(id, { resources: { cpuMillis: 1000, memBytes: 0 }, submittedAtMs: HOUR }));
    dirty = false;
    version++;
    // At 01:00 nothing is greener than now: the four are planned again, and start now, while the book has room.
    expect(d.revise(HOUR)).toEqual(['a', 'b', 'c', 'd']);
    for (const j of jobs) expect(d.hold(j, HOUR)).toBeUndefined();
    // The book is full from 01:00 to 02:00: a job that would start now is not booked, and is not refused either.
    for (const j of early) expect(d.hold(j, HOUR)).toBeUndefined();
    // Four more deferred jobs, held for a clean 03:00 again, and then all hours alike once more: the book
    // still holds the four started at 01:00 (until 02:00), so at 01:30 none of these may start now.
    dirty = true;
    const late = ['g', 'h', 'i', 'j'].map((id) => deferrable(id, { resources: { cpuMillis: 1000, memBytes: 0 }, submittedAtMs: 1.5 * HOUR }));
    for (const j of late) expect(d.hold(j, 1.5 * HOUR)?.untilMs).toBe(3 * HOUR);
    dirty = false;
    version++;
    expect(d.revise(1.5 * HOUR)).toEqual([]);
    for (const j of late) expect(d.hold(j, 1.5 * HOUR)?.untilMs).toBe(3 * HOUR);
    // At 02:00 the room is back: the four are released to start now.
    version++;
    expect(d.revise(2 * HOUR)).toEqual(['g', 'h', 'i', 'j']);
    for (const j of late) expect(d.hold(j, 2 * HOUR)).toBeUndefined();
  });

  test('with room for a rerun, a plan leaves the job time to run twice before its deadline', () => {
    // Latest start 08:00 (an hour's run, 8 hours' delay): the plan may go up to 07:00, or 06:00 with a rerun's room.
    const j = job({ id: 'late', durationSeconds: 3600, deferrable: { maxDelaySeconds: 8 * 3600 } });
    const greenestLast = profile((ms) => (ms >= 6.5 * HOUR ? 100 : 500));
    const plain = new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => greenestLast.forecast(from, to - from), rerunMargin: false });
    expect(plain.hold(j, 0)?.untilMs).toBe(6.5 * HOUR);
    // The default leaves the room, as the pending queue escalates a deferrable job that early.
    const withRerun = new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => greenestLast.forecast(from, to - from) });
    expect(withRerun.hold(j, 0)?.untilMs).toBe(6 * HOUR);
    // Greener every hour: where nodes fail often (a run of an hour cut once in 50), room for a second rerun:
    // up to 05:00, escalated then. At a failure a year per node, one rerun's room, as without a known rate.
    const greener = profile((ms) => 500 - (50 * ms) / HOUR);
    const planner = (nodeMtbfMs: number) => new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => greener.forecast(from, to - from), nodeMtbfMs });
    const frequent = planner(50 * HOUR).hold(j, 0);
    expect(frequent?.untilMs).toBe(5 * HOUR);
    expect(frequent?.escalateAtMs).toBe(5 * HOUR);
    expect(planner(8760 * HOUR).hold(j, 0)?.untilMs).toBe(6 * HOUR);
  });

  test('rerunsFor: one rerun unless nodes fail often enough that two cuts in a row are likelier than RERUN_RISK; more for gangs; at most MAX_RERUNS', () => {
    const hourJob = { tasks: 1, durationMs: HOUR };
    expect(rerunsFor(hourJob)).toBe(1);
    expect(rerunsFor(hourJob, 8760 * HOUR)).toBe(1);
    // Cut with p = 1 − e^(−1/50) ≈ 0.02: p² ≈ 4e-4 > 1e-4, p³ ≈ 8e-6.
    expect(rerunsFor(hourJob, 50 * HOUR)).toBe(2);
    // A gang of 16 tasks for 12 h on nodes failing once a year: p ≈ 0.022, two reruns.
    expect(rerunsFor({ tasks: 16, durationMs: 12 * HOUR }, 8760 * HOUR)).toBe(2);
    expect(rerunsFor({ tasks: 64, durationMs: 48 * HOUR }, 100 * HOUR)).toBe(MAX_RERUNS);
    // The risk left is at most RERUN_RISK below the cap.
    const p = 1 - Math.exp(-1 / 50);
    expect(p ** (rerunsFor(hourJob, 50 * HOUR) + 1)).toBeLessThanOrEqual(RERUN_RISK);
  });

  test('the pipeline releases a held job whose plan was given up, and it is placed at once', () => {
    const cluster = new ClusterState();
    cluster.upsertNode(nodeSpec('n1', { capacity: { cpuMillis: 4000, memBytes: 1 << 30 } }));
    const pending = new PendingQueue();
    const placed: string[] = [];
    let version = 0;
    let dirtyUntil = 3 * HOUR;
    const forecaster = profile((ms) => (ms >= dirtyUntil ? 100 : 500));
    const d = new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), forecastVersion: () => version });
    const pipeline = new SchedulingPipeline(cluster, pending, { policy: DEFAULT_POLICY, order: () => byPriorityThenSubmitTime }, { hold: d, bind: (j, placement) => (cluster.reserve(placement), placed.push(j.id)) });
    pending.add(deferrable('green', { resources: { cpuMillis: 1000, memBytes: 0 } }));
    pipeline.cycle(0);
    expect(pending.holdOf('green')?.untilMs).toBe(3 * HOUR);
    // The clean hours came early: the forecast at 01:00 says now is as clean as 03:00.
    dirtyUntil = HOUR;
    version++;
    expect([...pipeline.wake(HOUR)]).toEqual(['general']);
    pipeline.cycle(HOUR);
    expect(placed).toEqual(['green']);
  });

  test('a full book never makes starting now look worse: the job starts now rather than in a dirtier hour', () => {
    // Clean from 03:00 to 04:00 only, then dirtier than now from 06:00: the clean hour fills up (1 core of 100 at a share of 0.03).
    const d = planner((ms) => (ms >= 3 * HOUR && ms < 4 * HOUR ? 100 : ms >= 6 * HOUR ? 900 : 500), { bookShare: 0.03, supply: 100 });
    const starts = Array.from({ length: 6 }, (_, i) => d.hold(deferrable(`j${i}`, { resources: { cpuMillis: 1000, memBytes: 0 } }), 0)?.untilMs ?? 0);
    expect(starts).toEqual([3 * HOUR, 3 * HOUR, 3 * HOUR, 0, 0, 0]);
  });

  test('a window only a little greener than now (under 5 %) is not worth the wait', () => {
    expect(planner((ms) => (ms >= 3 * HOUR ? 480 : 500)).hold(deferrable('flat'), 0)).toBeUndefined();
    expect(planner((ms) => (ms >= 3 * HOUR ? 450 : 500)).hold(deferrable('worth'), 0)?.untilMs).toBe(3 * HOUR);
  });

  test('a plan that only just passed is kept while a newer forecast still expects its window greener than now, given up when not', () => {
    let version = 0;
    let later = 400;
    const forecaster = profile((ms) => (ms >= 3 * HOUR ? later : 500));
    const d = new DeferralPlanner({ stepMs: STEP, bookShare: 1, supplyOf: () => 10_000, forecast: (_pool, from, to) => forecaster.forecast(from, to - from), errorOf: () => 20, forecastVersion: () => version });
    // Saving 100 against a bar of 85 (three times the error of 20, and 25).
    expect(d.hold(deferrable('a'), 0)?.untilMs).toBe(3 * HOUR);
    later = 440;
    version++;
    expect(d.revise(HOUR)).toEqual([]);
    later = 490;
    version++;
    expect(d.revise(HOUR)).toEqual([]);
    later = 500;
    version++;
    expect(d.revise(HOUR)).toEqual(['a']);
  });
});
