import {
  ClusterState,
  EasyShadow,
  FairShare,
  MinHeap,
  PendingQueue,
  SchedulingPipeline,
  byPriorityThenSubmitTime,
  fixedOrder,
  neverFits,
  placeJob,
  type CyclePorts,
  type JobComparator,
  type NodeRuntime,
  withGpuDemandMix,
  type Placement,
  type SchedJob,
} from '../core';
import { POOLS, type NodeSpec, type Pool } from '../protocol';
import type { SimEnvironment } from './cluster-file';
import { EnergyModel } from './energy';
import { DEFAULT_DEFERRAL_SHARES, DeferralPlanner, nextGridTime, poolSupply, type SkilledForecaster } from '../green';
import { SimGreenForecast } from './green-forecast';
import type { SimPolicy } from './policies';
import { SimRecorder, type SimResult } from './recorder';
import { seededRng, exponential, randInt, type Rng } from './rng';
import type { TimedJob } from './synthetic';
import { HOUR_MS } from '../time';
import { zoneKey } from '../metering/power';

export { BSLD_THRESHOLD_MS, stats, type SimResult, type Stats, type Timeline } from './recorder';

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
  /** Node failures at given times, besides (or instead of) the random ones of the environment: a what-if, or a recorded outage. */
  outages?: readonly { nodeId: string; atMs: number; repairAtMs: number }[];
  /**
   * The forecaster green-aware plans with, fed the grid's intensity at every step (warm it up with earlier
   * history first); absent, plans see the recorded future (an oracle).
   */
  forecaster?: SkilledForecaster;
  /** Plan deferred starts early enough to run a job once more after a node failure (default: yes, as the pending queue escalates). */
  rerunMargin?: boolean;
  /**
   * Work that arrived before the run (times before the first job's, in any order): green-aware's
   * planner counts it in its pools' work mix and runs none of it, as a scheduler that has run for a while
   * knows its pools' load and swings (see bookingShare). Absent: the planner starts cold, on the configured
   * share until it has watched a pool for an hour.
   */
  warmWork?: readonly SchedJob[];
  /** Hears of every placement, when it is made (the parity test compares them with the service's). */
  onPlaced?(jobId: string, placement: Placement, atMs: number): void;
}

type SimEvent = { kind: 'end'; jobId: string; attempt: number } | { kind: 'step' } | { kind: 'fail'; nodeId?: string } | { kind: 'repair'; nodeId: string } | { kind: 'wake'; pool?: Pool } | { kind: 'sample' };

interface Running {
  timed: TimedJob;
  attempt: number;
  startMs: number;
  units: number;
  placement: Placement;
}

/**
 * Replays a workload through the scheduling pipeline in virtual time: arrivals, starts, completions, node
 * failures and repairs, and hourly changes of green share and price. Everything that decides — the queue,
 * the order, the green hold, quotas, placement, preemption, EASY backfilling, power caps — is the
 * SchedulingPipeline the service runs, configured by the policy; the simulator only decides when things
 * happen, and drives the pipeline as the service does: an arrival takes the submit fast path when nothing
 * of its pool is queued, and every change is followed by a cycle.
 */
export function simulate(jobs: readonly TimedJob[], nodes: readonly NodeSpec[], policy: SimPolicy, env: SimEnvironment, options: SimOptions = {}): SimResult {
  return new Simulation(jobs, nodes, policy, env, options).run();
}

class Simulation {
  private readonly cluster = new ClusterState();
  private readonly pending: PendingQueue;
  private readonly pipeline: SchedulingPipeline;
  private readonly events = new MinHeap<SimEvent>();
  private readonly running = new Map<string, Running>();
  /** Runs of each job so far (a run's end event names its run). */
  private readonly runs = new Map<string, number>();
  /** Runs that count against maxAttempts (preempted ones do not). */
  private readonly counted = new Map<string, number>();
  private readonly timedOf = new Map<string, TimedJob>();
  /** Time each job has run on attempts a failure or a preemption cut short (a job's wait leaves it out). */
  private readonly lostMs = new Map<string, number>();
  /** When each job was preempted (the storm guard counts these). */
  private readonly preemptedAt = new Map<string, number[]>();
  /** Jobs a job has stopped to make room for it. */
  private readonly preempting = new Map<string, string[]>();
  /** Victims chosen in the cycle under way, stopped once it ends (capacity only shrinks during a cycle). */
  private evictions: { victim: string; by: string }[] = [];
  /** EASY backfilling of each pool that uses it, kept up to date as jobs start and end. */
  private readonly easy: Partial<Record<Pool, EasyShadow>> = {};
  private readonly promised = new Map<string, number>();
  private readonly changed = new Set<Pool>();
  /** When each backfilling pool's next backfill pass is due (with a backfill interval). */
  private readonly backfillDueMs: Record<Pool, number | undefined> = { general: undefined, intelligent: undefined, super: undefined };
  private readonly planner: DeferralPlanner | undefined;
  private readonly green: SimGreenForecast;
  private readonly zonesOfPool = new Map<Pool, [string, number][]>();
  private readonly rng: Rng;
  private readonly energy: EnergyModel;
  private readonly recorder: SimRecorder;
  private nowMs = 0;
  private wakeAtMs = Infinity;
  /** Events that can still change what runs (ends, repairs, wake-ups); hourly ticks and failures do not count. */
  private live = 0;
  private failureDue = false;
  /** Whether any pool or zone has a power cap in this step (without one, placements need no power check). */
  private capsActive = true;

  constructor(
    private readonly jobs: readonly TimedJob[],
    nodes: readonly NodeSpec[],
    private readonly policy: SimPolicy,
    private readonly env: SimEnvironment,
    private readonly options: SimOptions,
  ) {
    this.rng = seededRng(options.seed ?? 1);
    const withinTenant = policy.order === 'fifo' ? bySubmitOrder : byPriorityThenSubmitTime;
    this.pending = new PendingQueue(withinTenant);
    this.energy = new EnergyModel(env, this.cluster);
    this.recorder = new SimRecorder(this.cluster, this.energy, options.samples ?? 200);
    // Pools scoring by GPU fragmentation learn the demand mix of this run's arrivals, and only of this run's.
    const placementPolicy = withGpuDemandMix(policy.placement);
    for (const pool of POOLS) if (policy.placement[pool].backfill) this.easy[pool] = new EasyShadow(placementPolicy, this.cluster, pool);
    for (const spec of nodes) {
      const node = this.cluster.upsertNode(spec);
      this.energy.addNode(node);
      this.recorder.addNode(spec, node.allocatable);
    }
    const supply = poolSupply(nodes);
    this.green = new SimGreenForecast(env, (pool) => this.poolZones(pool), options.forecaster);
    if (policy.shiftInTime) {
      const green = this.green;
      this.planner = new DeferralPlanner({
        stepMs: env.stepMs,
        bookShare: policy.deferralShare ?? DEFAULT_DEFERRAL_SHARES,
        forecast: (pool, from, to) => green.forecast(pool, from, to),
        supplyOf: (pool) => supply[pool],
        errorOf: options.forecaster && ((pool, aheadMs, against) => green.errorOf(pool, this.nowMs, aheadMs, against)),
        forecastVersion: () => green.forecastVersion(),
        backlog: (pool, jobId) => this.pending.queuedIn(pool) - (this.pending.has(jobId) && !this.pending.holdOf(jobId) ? 1 : 0),
        rerunMargin: options.rerunMargin,
        nodeMtbfMs: env.failures && env.failures.mtbfHours * HOUR_MS,
      });
      if (options.warmWork) this.planner.warm(options.warmWork, jobs[0]?.job.submittedAtMs ?? 0);
    }
    // One for the run: it keeps its shares while the cluster's use and capacity stay as they are.
    const fairShare = new FairShare(this.cluster, { weightOf: () => 1, agingMs: policy.agingMs });
    const order = (nowMs: number): JobComparator => (policy.order === 'fifo' ? bySubmitOrder : fairShare.comparator(nowMs));
    this.pipeline = new SchedulingPipeline(this.cluster, this.pending, { policy: placementPolicy, order, strict: policy.strict, preemptionMaxPerHour: policy.preemption?.maxPerHour, backfillDepth: policy.backfillDepth }, this.ports());
  }

  private ports(): CyclePorts {
    return {
      hold: this.planner,
      // Nobody reads why a simulated job waits: skip explaining failures (a visit of every node each).
      place: (cluster, p, placementPolicy, options) => placeJob(cluster, p, placementPolicy, { ...options, explain: false }),
      backfill: (pool) => this.easy[pool],
      power: { blocks: (placement, nowMs) => (this.overPowerCap(placement, nowMs) ? 'held by a power cap' : undefined) },
      preemption: this.policy.preemption && {
        victim: (jobId) => {
          const r = this.running.get(jobId);
          return r && { job: r.timed.job, startedAtMs: r.startMs, stopping: this.evictions.some((e) => e.victim === jobId), preemptedAtMs: this.preemptedAt.get(jobId) ?? [] };
        },
        stopping: (jobId) => (this.preempting.get(jobId) ?? []).filter((id) => this.running.has(id)),
        evict: (victims, by) => {
          for (const victim of victims) this.evictions.push({ victim, by: by.id });
          this.preempting.set(by.id, victims);
        },
      },
      bind: (job, placement) => this.start(job, placement),
      observe: (job, stage) => {
        if (stage === 'power-budget') this.recorder.counts.powerCapHolds++;
        else if (stage === 'green-deferral') this.recorder.deferredJobs.add(job.id);
      },
    };
  }

  run(): SimResult {
    const started = performance.now();
    const jobs = this.jobs;
    const firstSubmitMs = jobs.length > 0 ? jobs[0].job.submittedAtMs : 0;
    this.nowMs = firstSubmitMs;
    this.recorder.begin(firstSubmitMs, jobs.length > 0 ? jobs[jobs.length - 1].job.submittedAtMs : 0);
    this.setSignals();
    this.events.push(nextGridTime(this.nowMs, this.env.stepMs), { kind: 'step' });
    this.events.push(this.nowMs, { kind: 'sample' });
    for (const o of this.options.outages ?? []) {
      this.events.push(o.atMs, { kind: 'fail', nodeId: o.nodeId });
      this.live++;
      this.events.push(o.repairAtMs, { kind: 'repair', nodeId: o.nodeId });
    }
    let next = 0;
    const progressEvery = Math.max(1, Math.floor(jobs.length / 200));
    for (;;) {
      const arrivalMs = next < jobs.length ? jobs[next].job.submittedAtMs : Infinity;
      if (arrivalMs === Infinity && this.live === 0) break;
      const t = Math.min(arrivalMs, this.events.peekKey());
      this.advance(t);
      while (this.events.peekKey() === t) this.handle(this.events.pop()!);
      this.schedule();
      while (next < jobs.length && jobs[next].job.submittedAtMs === t) {
        this.arrive(jobs[next++]);
        if (next % progressEvery === 0) this.options.onProgress?.(next, jobs.length);
        this.schedule();
      }
    }
    this.options.onProgress?.(jobs.length, jobs.length);
    const unfinished = this.running.size + this.pending.size;
    const depth = this.policy.backfillDepth !== undefined && POOLS.some((p) => this.policy.placement[p].backfill) ? this.policy.backfillDepth : null;
    return this.recorder.result(this.policy.name, jobs.length, unfinished, depth, performance.now() - started);
  }

  private handle(e: SimEvent): void {
    switch (e.kind) {
      case 'end': {
        this.live--;
        const r = this.running.get(e.jobId);
        if (r && r.attempt === e.attempt) {
          this.stop(r);
          this.planner?.forget(e.jobId);
          this.recorder.finished({ timed: r.timed, startMs: r.startMs, nowMs: this.nowMs, lostMs: this.lostMs.get(e.jobId) ?? 0 });
          this.lostMs.delete(e.jobId);
        }
        return;
      }
      case 'step': {
        const capped = this.capsActive;
        this.setSignals();
        // Power caps may have moved: waiting jobs are tried again (as the service does when its caps change).
        if (capped || this.capsActive) for (const pool of POOLS) this.changed.add(pool);
        this.events.push(nextGridTime(this.nowMs, this.env.stepMs), { kind: 'step' });
        return;
      }
      case 'sample':
        this.recorder.sample(this.nowMs, (pool) => this.pending.sizeOf(pool));
        this.events.push(this.nowMs + this.recorder.sampleEveryMs, { kind: 'sample' });
        return;
      case 'fail':
        if (e.nodeId) this.failNode(this.cluster.getNode(e.nodeId)!, undefined);
        else {
          this.failureDue = false;
          this.failRandomNode();
        }
        return;
      case 'repair': {
        this.live--;
        const node = this.cluster.getNode(e.nodeId)!;
        this.cluster.setNodeState(e.nodeId, 'ready');
        this.energy.setDown(e.nodeId, false);
        this.changed.add(node.spec.pool);
        return;
      }
      case 'wake':
        this.live--;
        // A pool's next backfill pass retries its waiting jobs.
        if (e.pool) this.changed.add(e.pool);
        return;
    }
  }

  /** An arrival takes the submit fast path when nothing of its pool is queued, as the service does; else it queues. */
  private arrive(timed: TimedJob): void {
    const job = timed.job;
    this.recorder.arrived(timed);
    if (neverFits(this.cluster, this.pipeline.preparedOf(job))) {
      this.recorder.counts.rejected++;
      return;
    }
    this.timedOf.set(job.id, timed);
    if (this.env.failures && !this.failureDue) this.scheduleFailure();
    const placement = this.pending.queuedIn(job.pool) === 0 ? this.pipeline.placeNow(job, this.nowMs) : undefined;
    if (placement) this.start(job, placement);
    else this.pending.add(job);
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

  /** Integrates utilisation, energy, green energy and cost up to `t`. */
  private advance(t: number): void {
    if (t <= this.nowMs) return;
    this.recorder.advance(t);
    this.energy.integrate(this.nowMs, t);
    this.nowMs = t;
  }

  /**
   * Cycles until nothing more happens at this instant. Preempted jobs stop one at a time, each followed by a
   * cycle, as the service sees its agents' reports come in; the storm guard bounds how many there are.
   */
  private schedule(): void {
    for (;;) {
      this.pipeline.wake(this.nowMs);
      const inOrderOnly = this.inOrderOnlyPools();
      for (const pool of this.changed) this.pending.markDirty(pool);
      this.changed.clear();
      if (this.pending.hasWork) this.pipeline.cycle(this.nowMs, { inOrderOnly });
      this.notePromises();
      this.planBackfillPasses(inOrderOnly);
      const next = this.evictions.shift();
      if (!next) break;
      this.evict(next.victim);
    }
    const wakeMs = this.pipeline.nextWakeMs();
    if (wakeMs < this.wakeAtMs || this.wakeAtMs <= this.nowMs) {
      this.wakeAtMs = wakeMs;
      if (Number.isFinite(wakeMs)) {
        this.live++;
        this.events.push(Math.max(wakeMs, this.nowMs), { kind: 'wake' });
      }
    }
  }

  /** With a backfill interval, a backfilling pool starts jobs only in order between its backfill passes. */
  private inOrderOnlyPools(): Set<Pool> {
    const out = new Set<Pool>();
    if (!(this.options.backfillIntervalMs! > 0)) return out;
    for (const pool of POOLS) {
      const due = this.backfillDueMs[pool];
      if (this.policy.placement[pool].backfill && due !== undefined && this.nowMs < due) out.add(pool);
    }
    return out;
  }

  private planBackfillPasses(inOrderOnly: Set<Pool>): void {
    const interval = this.options.backfillIntervalMs ?? 0;
    if (!(interval > 0)) return;
    for (const pool of POOLS) {
      if (!this.policy.placement[pool].backfill || inOrderOnly.has(pool) || this.pending.sizeOf(pool) === 0) continue;
      this.backfillDueMs[pool] = this.nowMs + interval;
      this.live++;
      this.events.push(this.nowMs + interval, { kind: 'wake', pool });
    }
  }

  /** The first reservation a job is given is its promise: starting later is a violation. */
  private notePromises(): void {
    for (const pool of POOLS) {
      const r = this.pipeline.reservationOf(pool);
      if (r && !this.promised.has(r.head.job.id)) this.promised.set(r.head.job.id, r.reservation.startMs);
    }
  }

  /** Whether starting `placement` would take a pool or zone above its power cap now. */
  private overPowerCap(placement: Placement, nowMs: number): boolean {
    if (!this.capsActive) return false;
    for (const [key, added] of this.energy.addedBy(placement)) {
      const capKw = this.env.powerCapKwAt(key, nowMs);
      if (capKw !== undefined && this.energy.drawOf(key) + added > capKw * 1000) return true;
    }
    return false;
  }

  private start(job: SchedJob, placement: Placement): void {
    const timed = this.timedOf.get(job.id)!;
    this.cluster.reserve(placement);
    const attempt = (this.runs.get(job.id) ?? 0) + 1;
    this.runs.set(job.id, attempt);
    this.counted.set(job.id, (this.counted.get(job.id) ?? 0) + 1);
    const promised = this.promised.get(job.id);
    if (promised !== undefined && this.nowMs > promised) this.recorder.counts.violations++;
    const running: Running = { timed, attempt, startMs: this.nowMs, units: this.recorder.unitsOf(job.pool, placement), placement };
    this.account(running, 1);
    this.running.set(job.id, running);
    this.easy[job.pool]?.started(placement, this.nowMs + (job.walltimeMs ?? Infinity));
    this.options.onPlaced?.(job.id, placement, this.nowMs);
    this.live++;
    this.events.push(this.nowMs + timed.runMs, { kind: 'end', jobId: job.id, attempt });
  }

  /** Takes a running job off the cluster (it ended, its node failed, or it was preempted). */
  private stop(r: Running): void {
    const job = r.timed.job;
    this.cluster.release(job.id);
    this.running.delete(job.id);
    this.easy[job.pool]?.ended(job.id);
    this.account(r, -1);
    this.changed.add(job.pool);
  }

  /** A run cut short (a failure, a preemption): its time counts as neither waiting nor work done. */
  private lose(r: Running): void {
    this.lostMs.set(r.timed.job.id, (this.lostMs.get(r.timed.job.id) ?? 0) + this.nowMs - r.startMs);
  }

  private account(r: Running, sign: 1 | -1): void {
    this.recorder.allocated(r.timed.job.pool, sign * r.units);
    this.energy.apply(r.placement, sign);
  }

  /** Stops a preempted job and queues it again (preemptions do not count against its attempts). */
  private evict(jobId: string): void {
    const r = this.running.get(jobId);
    if (!r) return;
    this.stop(r);
    this.lose(r);
    this.counted.set(jobId, this.counted.get(jobId)! - 1);
    const at = (this.preemptedAt.get(jobId) ?? []).filter((t) => this.nowMs - t < HOUR_MS);
    at.push(this.nowMs);
    this.preemptedAt.set(jobId, at);
    this.recorder.counts.preempted++;
    this.pending.add(r.timed.job);
  }

  // ---- failures ----

  /** Failures come while there is work: the next one is drawn after each, and on the next arrival after a quiet spell. */
  private scheduleFailure(): void {
    const f = this.env.failures!;
    this.failureDue = true;
    this.events.push(this.nowMs + Math.max(1, Math.round(exponential(this.rng, (f.mtbfHours * HOUR_MS) / this.cluster.nodeCount))), { kind: 'fail' });
  }

  /** A random node fails; the next failure is drawn while there is work. */
  private failRandomNode(): void {
    const all = this.cluster.nodes();
    const node = all[randInt(this.rng, 0, all.length - 1)];
    if (node.state !== 'down') this.failNode(node, this.nowMs + Math.round(this.env.failures!.repairHours * HOUR_MS));
    if (node.state === 'down' && (this.running.size > 0 || this.pending.size > 0)) this.scheduleFailure();
  }

  /** A node fails: its jobs are killed and queued again (up to their last attempt); it comes back at `repairAtMs` (scripted outages bring their own). */
  private failNode(node: NodeRuntime, repairAtMs: number | undefined): void {
    if (node.state === 'down') return;
    for (const jobId of this.cluster.jobsOn(node.spec.id)) {
      const r = this.running.get(jobId)!;
      this.stop(r);
      this.lose(r);
      this.recorder.counts.interrupted++;
      if (this.counted.get(jobId)! >= this.policy.maxAttempts) {
        this.recorder.counts.failed++;
        this.planner?.forget(jobId);
        this.lostMs.delete(jobId);
      } else this.pending.add(r.timed.job);
    }
    this.cluster.setNodeState(node.spec.id, 'down');
    this.energy.setDown(node.spec.id, true);
    if (repairAtMs === undefined) return;
    this.live++;
    this.events.push(repairAtMs, { kind: 'repair', nodeId: node.spec.id });
  }

  /** The cluster's nodes by zone, and the keys power caps are looked up under (redone when nodes change). */
  private zones: { version: number; nodesByZone: Map<string, NodeRuntime[]>; capKeys: string[]; shares: Map<string, number> } | undefined;

  /** Tells every node its zone's green share now (the GreenShare score reads it), once per zone; notes whether any cap applies now. */
  private setSignals(): void {
    this.green.observe(this.nowMs);
    if (this.zones?.version !== this.cluster.nodesVersion) {
      const nodesByZone = new Map<string, NodeRuntime[]>();
      for (const node of this.cluster.nodes()) {
        let nodes = nodesByZone.get(node.spec.zone);
        if (!nodes) nodesByZone.set(node.spec.zone, (nodes = []));
        nodes.push(node);
      }
      const capKeys = [...new Set<string>([...POOLS, ...[...nodesByZone.keys()].map(zoneKey)])];
      this.zones = { version: this.cluster.nodesVersion, nodesByZone, capKeys, shares: new Map() };
    }
    this.capsActive = this.zones.capKeys.some((key) => this.env.powerCapKwAt(key, this.nowMs) !== undefined);
    for (const [zone, nodes] of this.zones.nodesByZone) {
      const share = this.env.greenShareAt(zone, this.nowMs);
      if (this.zones.shares.get(zone) === share) continue;
      this.zones.shares.set(zone, share);
      for (const node of nodes) node.greenShare = share;
    }
  }

}

/** Submit order: submit time, then id (trace ids are zero-padded, so ties keep trace order). Fixed: a cycle keeps heads in a heap. */
const bySubmitOrder: JobComparator = fixedOrder((a, b) => a.submittedAtMs - b.submittedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
