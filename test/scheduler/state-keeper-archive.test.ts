import { Registry } from 'prom-client';
import { describe, expect, test, vi } from 'vitest';
import type { Archive } from '../../src/archive';
import type { DeferralPlanner } from '../../src/green';
import type { JobEvent, Pool } from '../../src/protocol';
import type { JobLog, LogEntry } from '../../src/store/job-log';
import { createLogger } from '../../src/telemetry/logger';
import { SchedulerMetrics, type MetricsSource } from '../../src/telemetry/metrics';
import { JobStore } from '../../scheduler/job-store';
import type { LeadershipView } from '../../scheduler/leadership';
import { StateKeeper, archiveLogOf } from '../../scheduler/state-keeper';
import type { SchedulerConfig } from '../../scheduler/config';
import { ManualClock } from '../helpers/manual-clock';

/** Leadership a test hands out and takes back; each take-up is a new term. */
class Leadership implements LeadershipView {
  private readonly led = new Map<Pool, number>();
  private term = 0;
  leads(pool: Pool) {
    return this.led.has(pool);
  }
  termOf(pool: Pool) {
    return this.led.get(pool);
  }
  get ledPools() {
    return [...this.led.keys()];
  }
  leaderOf() {
    return undefined;
  }
  confirm() {}
  takeUp(pool: Pool) {
    this.led.set(pool, ++this.term);
  }
  lose(pool: Pool) {
    this.led.delete(pool);
  }
}

/** An archive writer that takes everything and remembers what it was offered and told. */
function recordingArchive() {
  const jobs = new Set<string>();
  const marks = new Map<string, number>();
  const writer = {
    isSaturated: () => false,
    enqueueJob: (job: { view: { id: string } }) => (jobs.add(job.view.id), true),
    enqueueUsage: () => true,
    markApplied: (log: string, seq: number) => marks.set(log, Math.max(seq, marks.get(log) ?? 0)),
  };
  return { archive: { writer } as unknown as Archive, jobs, marks };
}

const event = (e: Record<string, unknown>) => e as unknown as JobEvent;
/** A job of `pool` submitted and cancelled while it waited: ended, at positions `seq` and `seq + 1`. */
function endedJob(id: string, pool: Pool, seq: number): LogEntry[] {
  const spec = { name: id, pool, tasks: 1, resources: { cpuMillis: 100, memBytes: 1 }, priorityClass: 'normal', dataClass: 'public' };
  return [
    { kind: 'event', seq, event: event({ type: 'submitted', v: 1, jobId: id, tenant: 't', submittedAtMs: 0, priority: 0, maxAttempts: 1, spec, term: 1 }) },
    { kind: 'event', seq: seq + 1, event: event({ type: 'cancel-requested', jobId: id, reason: 'test', atMs: 1, term: 1 }) },
  ];
}

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

type KeeperDeps = ConstructorParameters<typeof StateKeeper>[0];

/**
 * A StateKeeper over a real JobStore, whose log replays what `replay` is given; no snapshots, archive or
 * audit unless `deps` gives them, and snapshots never due by the configuration unless it says so.
 */
function keeperOf(leadership: Leadership, deps: Partial<Omit<KeeperDeps, 'clock'>> & { clock?: ManualClock } = {}) {
  const clock = deps.clock ?? new ManualClock(1_000_000);
  let toReplay: LogEntry[] = [];
  const jobLog = { replay: async (fn: (e: LogEntry) => void) => (toReplay.forEach(fn), toReplay.at(-1)?.seq ?? 0) } as unknown as JobLog;
  const log = createLogger({ level: 'silent', name: 't' });
  const store = new JobStore(() => jobLog, leadership, log, new SchedulerMetrics({} as unknown as MetricsSource), { runEffects: () => undefined, appendFailed: () => undefined, relieved: () => undefined }, 0);
  const keeper = new StateKeeper({
    store,
    leadership,
    jobLog: () => jobLog,
    snapshots: () => { throw new Error('no snapshots in this test'); },
    archive: undefined,
    audit: () => { throw new Error('no audit in this test'); },
    planner: { forget: () => undefined } as unknown as DeferralPlanner,
    config: { jobRetentionMs: 3_600_000, snapshotIntervalMs: 1e12, snapshotEveryEntries: 1e9, compactionMarginEntries: 0 } as SchedulerConfig,
    registry: new Registry(),
    clock,
    log,
    ...deps,
  });
  keeper.start();
  return {
    keeper,
    clock,
    /** The log grows by `entries`, which the store replays. */
    replay: async (entries: LogEntry[]) => {
      toReplay = entries;
      await store.replay();
    },
    /** The keeper's next round (a second later), and the turns it takes. */
    round: async (n?: number) => {
      clock.advanceTo(clock.now() + 1_000);
      await turns(n);
    },
  };
}

describe('StateKeeper archiving across a change of leadership', () => {
  test('jobs a rebuild touched while no pool was led are offered once the pool is taken up, before the watermark passes them', async () => {
    const leadership = new Leadership();
    const { archive, jobs, marks } = recordingArchive();
    const { keeper, replay, round } = keeperOf(leadership, { archive });
    // A rebuild: the first part of the log is replayed while the replica leads nothing (leadership is
    // cleared at a rebuild's start), and the keeper's round runs in the middle of it.
    await replay(endedJob('early', 'general', 1));
    await round();
    expect(jobs.has('early')).toBe(false);
    // The rest of the log, then the pool is taken up; the next round archives.
    await replay(endedJob('late', 'general', 3));
    leadership.takeUp('general');
    await round();
    expect(jobs).toEqual(new Set(['early', 'late']));
    expect(marks.get(archiveLogOf('general'))).toBe(4);

    // Deposed and taken up again in a later term, with a job ended meanwhile: it is offered too.
    leadership.lose('general');
    await replay(endedJob('between', 'general', 5));
    await round();
    expect(jobs.has('between')).toBe(false);
    expect(marks.get(archiveLogOf('general'))).toBe(4);
    leadership.takeUp('general');
    await round();
    expect(jobs.has('between')).toBe(true);
    expect(marks.get(archiveLogOf('general'))).toBe(6);
    keeper.stop();
  });
});

describe('StateKeeper snapshot cadence', () => {
  test('a snapshot comes every snapshotEveryEntries, or after as many entries as the last one had lines when that is more', async () => {
    const leadership = new Leadership();
    leadership.takeUp('general');
    const saved: number[] = [];
    // A snapshot captures the state at once (the deferrals with it); encoding and storing come later, off the loop.
    let captures = 0;
    const { keeper, replay, round } = keeperOf(leadership, {
      snapshots: () => ({ save: async (seq: number) => void saved.push(seq), positions: async () => [] }) as never,
      planner: { forget: () => undefined, serialize: () => (captures++, []), serializeMix: () => ({}) } as unknown as DeferralPlanner,
      config: { jobRetentionMs: 3_600_000, snapshotIntervalMs: 1e12, snapshotEveryEntries: 100, compactionMarginEntries: 0 } as SchedulerConfig,
    });
    let nextSeq = 1;
    const endJobs = (n: number) => {
      const entries: LogEntry[] = [];
      for (let i = 0; i < n; i++, nextSeq += 2) entries.push(...endedJob(`j${nextSeq}`, 'general', nextSeq));
      return entries;
    };
    // 300 ended jobs, 600 entries: due by count. The snapshot has 600 lines (a job and a position each).
    await replay(endJobs(300));
    await round(50);
    expect(captures).toBe(1);
    await vi.waitFor(() => expect(saved).toEqual([600]), { timeout: 30_000 });
    // 200 entries more: past snapshotEveryEntries, but not yet as many as the snapshot had lines.
    await replay(endJobs(100));
    await round(50);
    expect(captures).toBe(1);
    // 600 entries since the snapshot: due.
    await replay(endJobs(200));
    await round(50);
    expect(captures).toBe(2);
    await vi.waitFor(() => expect(saved).toEqual([600, 1200]), { timeout: 30_000 });
    keeper.stop();
  });

  test('a snapshot by time waits twenty times as long as the last one took when that is longer than the interval', async () => {
    const leadership = new Leadership();
    leadership.takeUp('general');
    const saved: number[] = [];
    let captures = 0;
    // Each snapshot takes 10 s from capture to stored (a large state): the next by time is due 200 s after it, not 60 s.
    const clock = new ManualClock(1_000_000);
    const { keeper, replay, round } = keeperOf(leadership, {
      clock,
      snapshots: () => ({ save: async (seq: number) => { clock.advanceTo(clock.now() + 10_000); saved.push(seq); }, positions: async () => [] }) as never,
      planner: { forget: () => undefined, serialize: () => (captures++, []), serializeMix: () => ({}) } as unknown as DeferralPlanner,
      config: { jobRetentionMs: 3_600_000, snapshotIntervalMs: 60_000, snapshotEveryEntries: 1e9, compactionMarginEntries: 0 } as SchedulerConfig,
    });
    let nextSeq = 1;
    const endJob = async () => {
      await replay(endedJob(`j${nextSeq}`, 'general', nextSeq));
      nextSeq += 2;
    };
    await endJob();
    await round(50);
    expect(captures).toBe(1);
    await vi.waitFor(() => expect(saved).toEqual([2]), { timeout: 30_000 });
    const firstAt = clock.now() - 10_000;
    // The log moves a little; 120 s after the first capture: past the interval, not past twenty times 10 s.
    await endJob();
    clock.advanceTo(firstAt + 119_000);
    await round(50);
    expect(captures).toBe(1);
    // 200 s after it: due.
    clock.advanceTo(firstAt + 199_000);
    await round(50);
    expect(captures).toBe(2);
    await vi.waitFor(() => expect(saved).toEqual([2, 4]), { timeout: 30_000 });
    keeper.stop();
  });
});
