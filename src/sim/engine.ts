import {
  ClusterState,
  FairShare,
  PendingQueue,
  EasyShadow,
  byPriorityThenSubmitTime,
  neverFits,
  placeJob,
  prepareJob,
  shapeKey,
  type AttemptOutcome,
  type JobComparator,
  type Placement,
  type PreparedJobWithCache,
  type Reservation,
  type SchedJob,
} from '../core';
import { GPU_MILLI_PER_GPU, POOLS, type NodeSpec, type Pool } from '../protocol';
import type { SimEnvironment } from './cluster-file';
import { EnergyModel } from './energy';
import { DeferralBook, gridFrom, nextGridTime, planDeferral, poolSupply } from '../green';
import { gpuFragmentation, type GpuRequest } from './fragmentation';
import { MinHeap } from './min-heap';
import type { SimPolicy } from './policies';
import { seededRng, exponential, randInt, type Rng } from './rng';
import type { TimedJob } from './synthetic';
import { HOUR_MS } from '../time';

/** Share of a pool deferred jobs may book in any one step. */
const DEFAULT_DEFERRAL_SHARE = 0.3;
/** Above every priority class: a deferred job about to miss its deadline. */
const URGENT_PRIORITY = Number.MAX_SAFE_INTEGER;
/** Bounded slowdown counts run times below this as this long (the usual 10 s of the literature). */
export const BSLD_THRESHOLD_MS = 10_000;
/** Distinct GPU request shapes kept as the demand that fragmentation is measured against. */
const GPU_DEMAND_SHAPES = 64;

/** Percentiles and mean of a sample. */
export interface Stats {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** What one policy did with one workload. */
export interface SimResult {
  policy: string;
  jobs: {
    total: number;
    completed: number;
    /** Could never fit any node of their pool, even an empty one. */
    rejected: number;
    /** Still waiting (or running) when nothing else could happen. */
    unfinished: number;
    /** Killed by a node failure and queued again (counted once per kill). */
    interrupted: number;
  };
  /** Submit to (last) start, seconds. */
  waitS: Stats;
  /** Submit to end (turnaround), seconds. */
  completionS: Stats;
  /** max(1, turnaround / max(run, 10 s)). */
  boundedSlowdown: Stats;
  /** Time-averaged allocated share of each pool's scarce resource (cores; GPUs in intelligent) over the makespan. */
  utilisationByPool: Partial<Record<Pool, number>>;
  /** Mean of utilisationByPool over the pools that received jobs. */
  utilisation: number;
  /** Mean GPU fragmentation over the samples (null when the cluster has no GPUs). */
  gpuFragmentation: number | null;
  /**
   * Energy the nodes drew (idle included), its green share, carbon and cost; and what metering charges to
   * jobs (each task's share of its node's draw), with its carbon per completed job.
   */
  energy: { kwh: number; greenKwh: number; greenShare: number; carbonKg: number; cost: number; jobKwh: number; jobGreenShare: number; jobCarbonKg: number; carbonPerJobG: number };
  /**
   * Deferrable jobs: how long they waited past submission on average, and how many ended after their
   * deadline; and the mean wait of the other jobs, which shifting must not delay.
   */
  deferrable: { jobs: number; meanDelayS: number; deadlineMisses: number; othersMeanWaitS: number };
  /** Placements held back by a power cap (counted per attempt). */
  powerCapHolds: number;
  /** The most each pool drew at any moment, in kW. */
  peakPowerKwByPool: Record<Pool, number>;
  /**
   * Jobs that started later than the EASY reservation they were first given: 0 in submit order (run times
   * never exceed walltimes); in priority order a more urgent arrival may take the head's place.
   */
  reservationViolations: number;
  /** Jobs held back by green-aware admission at least once. */
  deferred: number;
  /** First submit to last end, seconds. */
  makespanS: number;
  timeline: Timeline;
  /** Wall-clock time of the replay. */
  wallMs: number;
  jobsPerSec: number;
}

/** State sampled at regular virtual times, for charts. */
export interface Timeline {
  tS: number[];
  utilisation: Record<Pool, number[]>;
  pending: Record<Pool, number[]>;
  powerKw: number[];
  powerKwByPool: Record<Pool, number[]>;
  greenShare: number[];
}

export interface SimOptions {
  /** Points of the timeline (about; more when the drain after the last arrival is long). */
  samples?: number;
  /** Seed of node failures. */
  seed?: number;
  /**
   * Run the EASY backfill pass at most this often (Slurm's bf_interval); between passes, jobs start only
   * in queue order, stopping at the first that does not fit. 0 (the default) backfills at every event,
   * as published results on SWF traces assume.
   */
  backfillIntervalMs?: number;
  /** Called every few thousand arrivals with how many have been replayed. */
  onProgress?(arrived: number, total: number): void;
}

type SimEvent = { kind: 'end'; jobId: string; attempt: number } | { kind: 'step' } | { kind: 'fail' } | { kind: 'repair'; nodeId: string } | { kind: 'wake'; pool: Pool } | { kind: 'release'; job: SchedJob } | { kind: 'urgent'; job: SchedJob } | { kind: 'sample' };

interface Running {
  timed: TimedJob;
  attempt: number;
  startMs: number;
  units: number;
  placement: Placement;
}

/**
 * Replays a workload through the placement core in virtual time: arrivals, starts, completions, node
 * failures and repairs, and hourly changes of green share and price. The queue (PendingQueue), the order
 * (FairShare), placement (placeJob) and EASY backfilling (EasyShadow, the incremental form of the
 * service's easyReservation and backfillAllowed) all come from src/core; the simulator only decides when
 * things happen.
 */
export function simulate(jobs: readonly TimedJob[], nodes: readonly NodeSpec[], policy: SimPolicy, env: SimEnvironment, options: SimOptions = {}): SimResult {
  return new Simulation(jobs, nodes, policy, env, options).run();
}

class Simulation {
  private readonly cluster = new ClusterState();
  /** One for the run: it keeps its shares while the cluster's use and capacity stay as they are. */
  private readonly fairShare: FairShare;
  private readonly pending: Record<Pool, PendingQueue>;
  private readonly events = new MinHeap<SimEvent>();
  private readonly running = new Map<string, Running>();
  private readonly attempts = new Map<string, number>();
  private readonly prepared = new WeakMap<SchedJob, PreparedJobWithCache>();
  private readonly timedOf = new WeakMap<SchedJob, TimedJob>();
  /** EASY backfilling of each pool that uses it, kept up to date as jobs start and end. */
  private readonly easy: Partial<Record<Pool, EasyShadow>> = {};
  private readonly reservations = new Map<Pool, { head: PreparedJobWithCache; reservation: Reservation }>();
  private readonly promised = new Map<string, number>();
  private readonly changed = new Set<Pool>();
  /** When each backfilling pool's next backfill pass is due (with a backfill interval). */
  private readonly backfillDueMs: Record<Pool, number | undefined> = { general: undefined, intelligent: undefined, super: undefined };
  /** Deferrable jobs held back by green-aware admission, not yet queued. */
  private readonly deferredJobs = new Set<SchedJob>();
  private readonly zonesOfPool = new Map<Pool, [string, number][]>();
  /** Capacity deferred jobs have booked, so they do not all start in the same greenest hour. */
  private readonly book: DeferralBook;
  private readonly supply: Record<Pool, number>;
  private readonly rng: Rng;
  private readonly withinTenant: JobComparator;

  // Accounting.
  private readonly energy: EnergyModel;
  private readonly units: Record<Pool, { allocated: number; capacity: number; integral: number; used: boolean }>;
  private readonly gpuDemand = new Map<string, GpuRequest>();
  private nowMs = 0;
  private firstSubmitMs = 0;
  private lastEndMs = 0;
  private nextSampleMs = 0;
  private sampleEveryMs = 1;
  private fragmentationSum = 0;
  private fragmentationSamples = 0;
  private readonly timeline: Timeline = { tS: [], utilisation: { general: [], intelligent: [], super: [] }, pending: { general: [], intelligent: [], super: [] }, powerKw: [], powerKwByPool: { general: [], intelligent: [], super: [] }, greenShare: [] };
  private readonly waits: number[] = [];
  private readonly turnarounds: number[] = [];
  private readonly slowdowns: number[] = [];
  private rejected = 0;
  private interrupted = 0;
  private violations = 0;
  private deferred = 0;
  private powerCapHolds = 0;
  private readonly deferrableDelays: number[] = [];
  private readonly otherWaits: number[] = [];
  private deadlineMisses = 0;
  /** Events that can still change what runs (ends, repairs, wake-ups); hourly ticks and failures do not count. */
  private live = 0;
  private failureDue = false;

  constructor(
    private readonly jobs: readonly TimedJob[],
    nodes: readonly NodeSpec[],
    private readonly policy: SimPolicy,
    private readonly env: SimEnvironment,
    private readonly options: SimOptions,
  ) {
    this.rng = seededRng(options.seed ?? 1);
    this.withinTenant = policy.order === 'fifo' ? bySubmitOrder : byPriorityThenSubmitTime;
    this.fairShare = new FairShare(this.cluster, { weightOf: () => 1, agingMs: policy.agingMs });
    this.pending = { general: new PendingQueue(this.withinTenant), intelligent: new PendingQueue(this.withinTenant), super: new PendingQueue(this.withinTenant) };
    this.units = { general: blankUnits(), intelligent: blankUnits(), super: blankUnits() };
    this.energy = new EnergyModel(env, this.cluster);
    this.book = new DeferralBook(env.stepMs, policy.deferralShare ?? DEFAULT_DEFERRAL_SHARE);
    this.supply = poolSupply(nodes);
    for (const pool of POOLS) if (policy.placement[pool].backfill) this.easy[pool] = new EasyShadow(policy.placement);
    for (const spec of nodes) {
      const node = this.cluster.upsertNode(spec);
      this.easy[spec.pool]?.upsertNode(spec);
      this.energy.addNode(spec);
      this.units[spec.pool].capacity += spec.pool === 'intelligent' ? node.allocatable.gpus * GPU_MILLI_PER_GPU : node.allocatable.cpuMillis;
    }
    for (const { job } of jobs) this.units[job.pool].used = true;
  }

  run(): SimResult {
    const started = performance.now();
    const jobs = this.jobs;
    this.firstSubmitMs = jobs.length > 0 ? jobs[0].job.submittedAtMs : 0;
    const lastSubmitMs = jobs.length > 0 ? jobs[jobs.length - 1].job.submittedAtMs : 0;
    this.nowMs = this.firstSubmitMs;
    this.sampleEveryMs = Math.max(1000, Math.ceil((lastSubmitMs - this.firstSubmitMs) / (this.options.samples ?? 200)));
    this.nextSampleMs = this.firstSubmitMs;
    this.setSignals();
    this.events.push(this.nextStepMs(), { kind: 'step' });
    this.events.push(this.nextSampleMs, { kind: 'sample' });
    let next = 0;
    const progressEvery = Math.max(1, Math.floor(jobs.length / 200));
    for (;;) {
      const arrivalMs = next < jobs.length ? jobs[next].job.submittedAtMs : Infinity;
      if (arrivalMs === Infinity && this.live === 0) break;
      const t = Math.min(arrivalMs, this.events.peekKey());
      this.advance(t);
      while (this.events.peekKey() === t) this.handle(this.events.pop()!);
      while (next < jobs.length && jobs[next].job.submittedAtMs === t) {
        this.arrive(jobs[next++]);
        if (next % progressEvery === 0) this.options.onProgress?.(next, jobs.length);
      }
      this.schedule();
    }
    this.options.onProgress?.(jobs.length, jobs.length);
    return this.result(performance.now() - started);
  }

  // ---- events ----

  private handle(e: SimEvent): void {
    switch (e.kind) {
      case 'end': {
        this.live--;
        const r = this.running.get(e.jobId);
        if (r && r.attempt === e.attempt) this.finish(r);
        return;
      }
      case 'step':
        this.setSignals();
        this.book.prune(this.nowMs);
        // Power caps may have moved.
        for (const pool of POOLS) this.changed.add(pool);
        this.events.push(this.nextStepMs(), { kind: 'step' });
        return;
      case 'release':
        this.live--;
        if (this.deferredJobs.has(e.job)) this.admit(e.job);
        return;
      case 'urgent':
        this.live--;
        this.makeUrgent(e.job);
        return;
      case 'sample':
        this.sample();
        this.nextSampleMs += this.sampleEveryMs;
        this.events.push(this.nextSampleMs, { kind: 'sample' });
        return;
      case 'fail':
        this.failureDue = false;
        this.failNode();
        return;
      case 'repair': {
        this.live--;
        const node = this.cluster.getNode(e.nodeId)!;
        this.cluster.setNodeState(e.nodeId, 'ready');
        this.easy[node.spec.pool]?.setNodeState(e.nodeId, 'ready');
        this.energy.setDown(e.nodeId, false);
        this.changed.add(node.spec.pool);
        return;
      }
      case 'wake':
        this.live--;
        this.changed.add(e.pool);
        return;
    }
  }

  private arrive(timed: TimedJob): void {
    const job = timed.job;
    const p = this.preparedOf(job);
    if (neverFits(this.cluster, p)) {
      this.rejected++;
      return;
    }
    if (job.pool === 'intelligent' && this.gpuDemand.size < GPU_DEMAND_SHAPES) this.gpuDemand.set(`${job.task.gpus}/${job.task.gpuMilli}`, { gpus: job.task.gpus, gpuMilli: job.task.gpuMilli });
    this.timedOf.set(job, timed);
    if (this.env.failures && !this.failureDue) this.scheduleFailure();
    if (!this.defer(job)) this.pending[job.pool].add(job);
  }

  /**
   * Temporal shifting (after "Let's Wait Awhile", Middleware 2021): a deferrable job that says how long it
   * runs is held out of the queue until the start, within its window, whose forecast carbon intensity over
   * its run is lowest (planDeferral). The forecast is the recorded future (an oracle), averaged over its
   * pool's zones.
   */
  private defer(job: SchedJob): boolean {
    if (!this.policy.shiftInTime) return false;
    const plan = planDeferral({ job, nowMs: this.nowMs, stepMs: this.env.stepMs, forecast: (from, to) => this.forecast(job.pool, from, to), book: this.book, supply: this.supply[job.pool] });
    if (!plan || plan.startMs <= this.nowMs) return false;
    this.deferredJobs.add(job);
    this.deferred++;
    this.live++;
    this.events.push(plan.startMs, { kind: 'release', job });
    // Still waiting halfway between its planned start and its latest start: it goes ahead of everything.
    this.live++;
    this.events.push(Math.round((plan.startMs + plan.latestStartMs) / 2), { kind: 'urgent', job });
    return true;
  }

  /** A released deferred job that has not started yet takes the highest priority, so shifting it does not cost its deadline. */
  private makeUrgent(job: SchedJob): void {
    const queue = this.pending[job.pool];
    if (!queue.has(job.id)) return;
    queue.remove(job.id);
    const urgent: SchedJob = { ...job, priority: URGENT_PRIORITY };
    this.timedOf.set(urgent, this.timedOf.get(job)!);
    queue.add(urgent);
    queue.markDirty(job.pool);
  }

  /** The carbon intensity of a pool's electricity from `fromMs` to `toMs` on the signals' grid, from the recorded signals. */
  private forecast(pool: Pool, fromMs: number, toMs: number): { atMs: number; value: number }[] {
    const zones = this.poolZones(pool);
    const at = (t: number) => zones.reduce((sum, [zone, weight]) => sum + weight * this.energy.carbonAt(zone, t), 0);
    return gridFrom(fromMs, toMs, this.env.stepMs).map((t) => ({ atMs: t, value: at(t) }));
  }

  /** The zones of a pool, each weighted by its share of the pool's nodes. */
  private poolZones(pool: Pool): [string, number][] {
    let zones = this.zonesOfPool.get(pool);
    if (!zones) {
      const count = new Map<string, number>();
      for (const node of this.cluster.nodesOf(pool)) count.set(node.spec.zone, (count.get(node.spec.zone) ?? 0) + 1);
      const total = [...count.values()].reduce((a, b) => a + b, 0);
      zones = [...count].map(([zone, n]) => [zone, n / Math.max(1, total)]);
      this.zonesOfPool.set(pool, zones);
    }
    return zones;
  }

  private admit(job: SchedJob): void {
    this.deferredJobs.delete(job);
    this.pending[job.pool].add(job);
  }


  /** Integrates utilisation, energy, green energy and cost up to `t`, taking the samples on the way. */
  private advance(t: number): void {
    const dt = t - this.nowMs;
    if (dt <= 0) return;
    for (const pool of POOLS) this.units[pool].integral += this.units[pool].allocated * dt;
    this.energy.integrate(this.nowMs, t);
    this.nowMs = t;
  }

  // ---- scheduling ----

  private schedule(): void {
    const interval = this.options.backfillIntervalMs ?? 0;
    for (const pool of POOLS) {
      const queue = this.pending[pool];
      // With a backfill interval, a backfilling pool runs in-order passes between its backfill passes.
      const due = this.backfillDueMs[pool];
      const inOrderOnly = interval > 0 && this.policy.placement[pool].backfill && due !== undefined && this.nowMs < due;
      if (this.changed.has(pool)) {
        this.changed.delete(pool);
        queue.markDirty(pool);
        if (!inOrderOnly) this.reservations.delete(pool);
      }
      if (!queue.hasWork) continue;
      const order = this.policy.order === 'fifo' ? bySubmitOrder : this.fairShare.comparator(this.nowMs);
      const held = new Map<string, number>();
      queue.runCycle((job) => this.attempt(job, held, inOrderOnly), Number.POSITIVE_INFINITY, order);
      if (interval > 0 && this.policy.placement[pool].backfill && !inOrderOnly && queue.size > 0) {
        this.backfillDueMs[pool] = this.nowMs + interval;
        this.live++;
        this.events.push(this.nowMs + interval, { kind: 'wake', pool });
      }
    }
  }

  private attempt(job: SchedJob, held: Map<string, number>, inOrderOnly: boolean): AttemptOutcome {
    const p = this.preparedOf(job);
    const placement = this.policy.placement;
    const result = placeJob(this.cluster, p, placement);
    if (!result.ok) {
      const easy = this.easy[job.pool];
      if (easy && !inOrderOnly && !this.reservations.has(job.pool)) {
        const reservation = easy.reservation(p, this.nowMs);
        if (reservation) {
          this.reservations.set(job.pool, { head: p, reservation });
          if (!this.promised.has(job.id)) this.promised.set(job.id, reservation.startMs);
        }
      }
      return { ok: false, sameForShape: true, failure: result, stop: this.policy.strict || inOrderOnly };
    }
    const reserved = inOrderOnly ? undefined : this.reservations.get(job.pool);
    if (reserved && reserved.head.job.id !== job.id) {
      const endMs = this.nowMs + (job.walltimeMs ?? Number.POSITIVE_INFINITY);
      // Within a cycle, a shape held back at some end time is held back at any later one.
      const key = shapeKey(job);
      const heldFrom = held.get(key);
      if ((heldFrom !== undefined && endMs >= heldFrom) || !this.easy[job.pool]!.allowed(result.placement, endMs)) {
        held.set(key, Math.min(heldFrom ?? Infinity, endMs));
        return { ok: false, sameForShape: false, reason: 'held back by the EASY reservation' };
      }
    }
    if (this.overPowerCap(result.placement)) {
      this.powerCapHolds++;
      return { ok: false, sameForShape: false, reason: 'held by a power cap' };
    }
    this.start(job, result.placement);
    return { ok: true };
  }

  /** Whether starting `placement` would take a pool or zone above its power cap now. */
  private overPowerCap(placement: Placement): boolean {
    for (const [key, added] of this.energy.addedBy(placement)) {
      const capKw = this.env.powerCapKwAt(key, this.nowMs);
      if (capKw !== undefined && this.energy.drawOf(key) + added > capKw * 1000) return true;
    }
    return false;
  }

  private start(job: SchedJob, placement: Placement): void {
    const timed = this.timedOf.get(job)!;
    this.cluster.reserve(placement);
    const attempt = (this.attempts.get(job.id) ?? 0) + 1;
    this.attempts.set(job.id, attempt);
    const promised = this.promised.get(job.id);
    if (promised !== undefined && this.nowMs > promised) this.violations++;
    const running: Running = { timed, attempt, startMs: this.nowMs, units: 0, placement };
    for (const task of placement.tasks) {
      const alloc = this.cluster.getNode(task.nodeId)!.allocatable;
      running.units += job.pool === 'intelligent' ? task.gpuIndices.length * task.gpuMilliEach : placement.exclusive ? alloc.cpuMillis : task.cpuMillis;
    }
    this.account(running, 1);
    this.running.set(job.id, running);
    this.easy[job.pool]?.started(placement, this.nowMs + (job.walltimeMs ?? Infinity));
    this.live++;
    this.events.push(this.nowMs + timed.runMs, { kind: 'end', jobId: job.id, attempt });
  }

  private finish(r: Running): void {
    const job = r.timed.job;
    this.stop(r);
    const turnaround = this.nowMs - job.submittedAtMs;
    this.waits.push(r.startMs - job.submittedAtMs);
    this.turnarounds.push(turnaround);
    this.slowdowns.push(Math.max(1, turnaround / Math.max(r.timed.runMs, BSLD_THRESHOLD_MS)));
    this.lastEndMs = Math.max(this.lastEndMs, this.nowMs);
    if (!job.deferrable) this.otherWaits.push(r.startMs - job.submittedAtMs);
    else {
      this.deferrableDelays.push(r.startMs - job.submittedAtMs);
      if (job.deferrable.deadlineMs !== undefined && this.nowMs > job.deferrable.deadlineMs) this.deadlineMisses++;
    }
  }

  /** Takes a running job off the cluster (it ended or its node failed). */
  private stop(r: Running): void {
    const job = r.timed.job;
    this.cluster.release(job.id);
    this.running.delete(job.id);
    this.easy[job.pool]?.ended(job.id);
    this.account(r, -1);
    this.changed.add(job.pool);
  }

  private account(r: Running, sign: 1 | -1): void {
    this.units[r.timed.job.pool].allocated += sign * r.units;
    this.energy.apply(r.placement, sign);
  }

  // ---- failures ----

  /** Failures come while there is work: the next one is drawn after each, and on the next arrival after a quiet spell. */
  private scheduleFailure(): void {
    const f = this.env.failures!;
    this.failureDue = true;
    const nodes = this.cluster.nodeCount;
    this.events.push(this.nowMs + Math.max(1, Math.round(exponential(this.rng, (f.mtbfHours * HOUR_MS) / nodes))), { kind: 'fail' });
  }

  /** A random node fails: its jobs are killed and queued again; it comes back after the repair time. */
  private failNode(): void {
    const all = this.cluster.nodes();
    const node = all[randInt(this.rng, 0, all.length - 1)];
    if (node.state === 'down') {
      this.scheduleFailure();
      return;
    }
    for (const jobId of [...this.cluster.jobsOn(node.spec.id)]) {
      const r = this.running.get(jobId)!;
      this.stop(r);
      this.interrupted++;
      this.pending[r.timed.job.pool].add(r.timed.job);
    }
    this.cluster.setNodeState(node.spec.id, 'down');
    this.easy[node.spec.pool]?.setNodeState(node.spec.id, 'down');
    this.energy.setDown(node.spec.id, true);
    this.live++;
    this.events.push(this.nowMs + Math.round(this.env.failures!.repairHours * HOUR_MS), { kind: 'repair', nodeId: node.spec.id });
    if (this.running.size > 0 || this.pending.general.size + this.pending.intelligent.size + this.pending.super.size > 0) this.scheduleFailure();
  }

  // ---- environment and measurement ----

  /** Tells every node its zone's green share now (the GreenShare score reads it). */
  private setSignals(): void {
    for (const node of this.cluster.nodes()) this.cluster.setNodeTelemetry(node.spec.id, 0, this.env.greenShareAt(node.spec.zone, this.nowMs));
  }

  /** The next time the environment's signals may change. */
  private nextStepMs(): number {
    return nextGridTime(this.nowMs, this.env.stepMs);
  }

  /** The green share of the power the cluster draws now. */
  private greenShareNow(): number {
    const { watts, green } = this.energy.now(this.nowMs);
    return watts > 0 ? green / watts : 0;
  }

  private sample(): void {
    const tl = this.timeline;
    tl.tS.push(Math.round((this.nowMs - this.firstSubmitMs) / 1000));
    for (const pool of POOLS) {
      const u = this.units[pool];
      tl.utilisation[pool].push(u.capacity > 0 ? round(u.allocated / u.capacity, 4) : 0);
      tl.pending[pool].push(this.pending[pool].size);
      tl.powerKwByPool[pool].push(round(this.energy.drawOf(pool) / 1000, 3));
    }
    tl.powerKw.push(round(this.energy.now(this.nowMs).watts / 1000, 2));
    tl.greenShare.push(round(this.greenShareNow(), 4));
    if (this.units.intelligent.capacity > 0) {
      this.fragmentationSum += gpuFragmentation(this.cluster, [...this.gpuDemand.values()]).gpuFragmentation;
      this.fragmentationSamples++;
    }
    // A long drain after the last arrival would grow the timeline without bound: halve its resolution.
    if (tl.tS.length >= 2 * (this.options.samples ?? 200)) {
      this.sampleEveryMs *= 2;
      halve(tl);
    }
  }

  private result(wallMs: number): SimResult {
    const spanMs = Math.max(1, this.lastEndMs - this.firstSubmitMs);
    const utilisationByPool: Partial<Record<Pool, number>> = {};
    for (const pool of POOLS) {
      const u = this.units[pool];
      if (u.used && u.capacity > 0) utilisationByPool[pool] = round(u.integral / (u.capacity * spanMs), 4);
    }
    const used = Object.values(utilisationByPool);
    const unfinished = this.running.size + POOLS.reduce((s, p) => s + this.pending[p].size, 0);
    const e = this.energy.totalsNow();
    const delays = stats(this.deferrableDelays, 1000);
    return {
      policy: this.policy.name,
      jobs: { total: this.jobs.length, completed: this.waits.length, rejected: this.rejected, unfinished, interrupted: this.interrupted },
      waitS: stats(this.waits, 1000),
      completionS: stats(this.turnarounds, 1000),
      boundedSlowdown: stats(this.slowdowns, 1),
      utilisationByPool,
      utilisation: used.length > 0 ? round(used.reduce((a, b) => a + b, 0) / used.length, 4) : 0,
      gpuFragmentation: this.fragmentationSamples > 0 ? round(this.fragmentationSum / this.fragmentationSamples, 4) : null,
      energy: {
        kwh: round(e.kwh, 2),
        greenKwh: round(e.greenKwh, 2),
        greenShare: e.kwh > 0 ? round(e.greenKwh / e.kwh, 4) : 0,
        carbonKg: round(e.carbonKg, 2),
        cost: round(e.cost, 2),
        jobKwh: round(e.jobKwh, 2),
        jobGreenShare: e.jobKwh > 0 ? round(e.jobGreenKwh / e.jobKwh, 4) : 0,
        jobCarbonKg: round(e.jobCarbonKg, 2),
        carbonPerJobG: this.waits.length > 0 ? round((e.jobCarbonKg * 1000) / this.waits.length, 2) : 0,
      },
      deferrable: { jobs: this.deferrableDelays.length, meanDelayS: delays.mean, deadlineMisses: this.deadlineMisses, othersMeanWaitS: stats(this.otherWaits, 1000).mean },
      powerCapHolds: this.powerCapHolds,
      peakPowerKwByPool: { general: this.energy.peakPoolWatts.general / 1000, intelligent: this.energy.peakPoolWatts.intelligent / 1000, super: this.energy.peakPoolWatts.super / 1000 },
      reservationViolations: this.violations,
      deferred: this.deferred,
      makespanS: Math.round(spanMs / 1000),
      timeline: this.timeline,
      wallMs: Math.round(wallMs),
      jobsPerSec: Math.round(this.jobs.length / Math.max(1e-3, wallMs / 1000)),
    };
  }

  private preparedOf(job: SchedJob): PreparedJobWithCache {
    let p = this.prepared.get(job);
    if (!p) this.prepared.set(job, (p = prepareJob(job, this.policy.placement)));
    return p;
  }
}

/** Submit order: submit time, then id (trace ids are zero-padded, so ties keep trace order). */
const bySubmitOrder: JobComparator = (a, b) => a.submittedAtMs - b.submittedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function blankUnits() {
  return { allocated: 0, capacity: 0, integral: 0, used: false };
}

/** Mean and percentiles (nearest rank) of a sample, divided by `unit`. */
export function stats(values: number[], unit: number): Stats {
  if (values.length === 0) return { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] / unit;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { mean: round(sum / sorted.length / unit, 2), p50: round(at(0.5), 2), p95: round(at(0.95), 2), p99: round(at(0.99), 2), max: round(sorted[sorted.length - 1] / unit, 2) };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Keeps every other point of the timeline. */
function halve(tl: Timeline): void {
  const keep = <T>(xs: T[]) => {
    const out = xs.filter((_, i) => i % 2 === 0);
    xs.length = 0;
    xs.push(...out);
  };
  keep(tl.tS);
  for (const pool of POOLS) {
    keep(tl.utilisation[pool]);
    keep(tl.pending[pool]);
    keep(tl.powerKwByPool[pool]);
  }
  keep(tl.powerKw);
  keep(tl.greenShare);
}
