import type { Pool } from '../protocol';
import { byEndTime, finitePrefix, type BackfillProfile, type ExpectedEnd, type Reservation } from './backfill';
import { ClusterState, placementDemand } from './cluster';
import type { NodeRuntime } from './node-runtime';
import type { Policy } from './framework';
import type { Placement, SchedJob } from './model';
import { demandOf, jobFits, placeJob } from './placement';
import type { PreparedJobWithCache } from './prepare';
import { SortedEnds } from './sorted-ends';

/** Before every end: the boundary when no job counts as ended. */
const NOTHING_ENDED: ExpectedEnd = { jobId: '', endMs: Number.NEGATIVE_INFINITY };
/** The id under which the head's planned placement is held in the shadow. */
const HEAD_ID = '\u0000easy-head';
/** Look-ahead only asks whether a job fits. */
const QUIET = { explain: false };

/**
 * EASY backfilling of one pool as an availability profile kept up to date incrementally, for a caller that
 * sees every start and end in the pool (the simulator, which replays hundreds of thousands of them; the
 * service, from its job table).
 *
 * It keeps a shadow of the pool as it will be at the head's reservation: every running job except those
 * expected to end by the boundary (the last of them in end order), plus the head itself on the nodes it
 * is planned to start on, as Slurm's backfill plans a pending job onto specific resources. A job may
 * start now if it ends by the reservation or fits in the shadow beside the head: one reservation attempt
 * of its placement, never a search. The head's plan is kept while the shadow only loses capacity to jobs
 * that fit beside it; when capacity comes back (a job past the boundary ends early, a node returns), the
 * plan is looked for again, moving the boundary only as far as it must.
 */
export class EasyShadow implements BackfillProfile {
  private shadow = new ClusterState();
  private readonly ends = new SortedEnds();
  private readonly running = new Map<string, { placement: Placement; end: ExpectedEnd }>();
  /** Running jobs up to here, in end order, count as ended: they are not in the shadow. */
  private boundary = NOTHING_ENDED;
  private head: PreparedJobWithCache | undefined;
  /** Where the head is planned to start, held in the shadow under HEAD_ID; undefined when it must be found again. */
  private headPlacement: Placement | undefined;
  private headNodes = new Set<string>();
  /** The shadow gained capacity since the head's plan was found: it may start earlier. */
  private improvable = false;
  /** Whether it gained only from jobs in it ending early (not from the boundary's job or a node coming back). */
  private gainedOnlyInShadow = true;
  /** The shadow's node for each node of the source, by the source's ordinal. */
  private mirror: (NodeRuntime | undefined)[] = [];
  /** The source's versions the shadow's nodes follow. */
  private nodesVersion = -1;
  private statesVersion = -1;

  /**
   * @param source the pool's live cluster: the shadow follows its nodes (specs and states) on its own; starts
   * and ends of jobs are told (started, ended), with when each is expected to end.
   */
  constructor(
    private readonly policy: Policy,
    private readonly source: ClusterState,
    private readonly pool: Pool,
  ) {}

  /** Forgets every job (a rebuild replays them). */
  reset(): void {
    this.shadow = new ClusterState();
    this.mirror = [];
    this.ends.clear();
    this.running.clear();
    this.boundary = NOTHING_ENDED;
    this.head = undefined;
    this.headPlacement = undefined;
    this.headNodes = new Set();
    this.improvable = false;
    this.gainedOnlyInShadow = true;
    this.nodesVersion = -1;
    this.statesVersion = -1;
  }

  /**
   * Follows the source's nodes: a new or changed node rebuilds the shadow (rare: registrations); a change of
   * state is copied node by node (a node that comes back may let the head start earlier; one that leaves
   * under the head's plan drops it).
   */
  private sync(): void {
    if (this.nodesVersion !== this.source.nodesVersion) {
      this.nodesVersion = this.source.nodesVersion;
      this.statesVersion = this.source.statesVersion;
      this.rebuild();
      return;
    }
    if (this.statesVersion === this.source.statesVersion) return;
    this.statesVersion = this.source.statesVersion;
    for (const node of this.source.nodesOf(this.pool)) {
      const mine = this.shadow.getNode(node.id);
      if (!mine || mine.state === node.state) continue;
      this.shadow.setNodeState(node.id, node.state);
      if (node.state === 'ready') this.gained();
      else if (this.headNodes.has(node.id)) this.dropPlan();
    }
  }

  /** A fresh shadow of the source's nodes with every running job in it (the boundary starts over). */
  private rebuild(): void {
    this.shadow = new ClusterState();
    this.mirror = [];
    for (const node of this.source.nodesOf(this.pool)) {
      this.mirror[node.ordinal] = this.shadow.upsertNode(node.spec);
      if (node.state !== 'ready') this.shadow.setNodeState(node.id, node.state);
    }
    for (const { placement } of this.running.values()) this.shadow.reserve(placement);
    this.boundary = NOTHING_ENDED;
    this.headPlacement = undefined;
    this.headNodes = new Set();
  }

  /** A job started on `placement` and is expected to end at `endMs` (Infinity without a walltime). */
  started(placement: Placement, endMs: number): void {
    this.sync();
    const end = { jobId: placement.jobId, endMs };
    this.running.set(placement.jobId, { placement, end });
    this.ends.insert(end);
    if (byEndTime(end, this.boundary) <= 0) return;
    // A job that does not fit beside the head's plan (it did not ask first): the plan gives way and is found again.
    // One check per start: a placement that fits is taken without checking it twice.
    if (this.shadow.fits(placement)) this.shadow.restore(placement);
    else {
      this.dropPlan();
      this.shadow.reserve(placement);
    }
  }

  /** A job ended (or was stopped). */
  ended(jobId: string): void {
    const r = this.running.get(jobId);
    if (!r) return;
    this.running.delete(jobId);
    this.ends.remove(r.end);
    if (this.shadow.release(jobId)) this.improvable = true;
    else if (r.end === this.boundary) this.gained();
  }

  /** Capacity came back some other way than a job in the shadow ending: the plan is looked for again. */
  private gained(): void {
    this.improvable = true;
    this.gainedOnlyInShadow = false;
  }

  /**
   * Whether the head surely cannot start earlier than planned after jobs in the shadow ended early: starting
   * earlier means fitting with the boundary's job still running, and the shadow's free capacity, summed over
   * its nodes, must then hold that job beside the head (a necessary condition, O(1)). Keeps the plan: the
   * shadow only gained capacity, so it still fits.
   */
  private cannotStartEarlier(): boolean {
    if (!this.gainedOnlyInShadow || this.boundary === NOTHING_ENDED) return false;
    const atBoundary = this.running.get(this.boundary.jobId);
    if (!atBoundary) return false;
    return !this.shadow.mayHold(this.pool, placementDemand(atBoundary.placement));
  }

  /**
   * The reservation of `head`, the first job of the queue, which does not fit now; null when it could not
   * start even after every running job with a walltime has ended.
   */
  reservation(head: PreparedJobWithCache, nowMs: number): Reservation | null {
    this.sync();
    if (this.head?.job.id !== head.job.id) this.newHead(head);
    else if (this.headPlacement && (!this.improvable || this.cannotStartEarlier())) {
      this.improvable = false;
      this.gainedOnlyInShadow = true;
      return this.reservationNow(nowMs);
    }
    this.dropPlan();
    this.improvable = false;
    this.gainedOnlyInShadow = true;
    const { prefix, readUpTo } = finitePrefix(this.ends);
    // k: how many running jobs, in end order, count as ended now.
    let k = 0;
    while (readUpTo(k + 1) > k && byEndTime(prefix[k], this.boundary) <= 0) k++;
    const endFirst = (n: number) => {
      for (; k < n; k++) this.shadow.release(prefix[k].jobId);
      while (k > n) this.shadow.restore(this.running.get(prefix[--k].jobId)!.placement);
    };
    // Probes only ask whether the head fits; its placement is made once, where it is planned, with the
    // rotation it saw when probed there (spreading pools start their scan at it).
    const rotationAfter = new Map<number, number>();
    const fits = () => {
      const ok = jobFits(this.shadow, head);
      if (ok) rotationAfter.set(k, this.shadow.rotation);
      return ok;
    };

    if (fits()) {
      // Jobs ended early or the head needs less than thought: give back ends, latest first, while it still fits.
      while (k > 0) {
        endFirst(k - 1);
        if (!fits()) {
          endFirst(k + 1);
          break;
        }
      }
    } else {
      // More must end first: double the jobs ended until it fits, then bisect.
      let lo = k;
      let hi = k;
      for (let step = 1; ; step *= 2) {
        const n = readUpTo(lo + step);
        if (n === lo) {
          this.boundary = k > 0 ? prefix[k - 1] : NOTHING_ENDED;
          return null;
        }
        endFirst(n);
        if (fits()) {
          hi = n;
          break;
        }
        lo = n;
      }
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        endFirst(mid);
        if (fits()) hi = mid;
        else lo = mid;
      }
      endFirst(hi);
    }
    this.boundary = k > 0 ? prefix[k - 1] : NOTHING_ENDED;
    const rotation = this.shadow.rotation;
    this.shadow.rotation = rotationAfter.get(k)!;
    const result = placeJob(this.shadow, head, this.policy, QUIET);
    this.shadow.rotation = rotation;
    if (!result.ok) throw new Error(`EASY: head ${head.job.id} fitted when probed but not when planned`);
    const planned = result.placement;
    this.headPlacement = { ...planned, jobId: HEAD_ID };
    this.headNodes = new Set(planned.tasks.map((t) => t.nodeId));
    this.shadow.reserve(this.headPlacement);
    return this.reservationNow(nowMs);
  }

  /**
   * Whether a job may start now on `placement`, ending by `endMs`, without delaying the reservation last
   * given: it ends by then, or it fits in the shadow beside the head's plan.
   */
  couldAllow(job: SchedJob, endMs: number): boolean {
    this.sync();
    if (!this.headPlacement || byEndTime({ jobId: job.id, endMs }, this.boundary) <= 0) return true;
    // Whatever it is allowed on, it fits in the shadow: the shadow must have room for it somewhere.
    return this.shadow.mayHold(this.pool, demandOf(job));
  }

  roomBeside(job: PreparedJobWithCache, endMs: number): ((node: NodeRuntime) => number) | undefined {
    this.sync();
    if (!this.headPlacement || byEndTime({ jobId: job.job.id, endMs }, this.boundary) <= 0) return undefined;
    const { tenant, dataClass, tasks } = job.job;
    const restricted = dataClass === 'restricted';
    // What the node will hold at the reservation, the head included: the job's tasks that fit there too.
    return (node) => {
      const then = this.mirror[node.ordinal];
      if (!then || then.isolationBlocks(tenant, restricted)) return 0;
      return then.fitCount(job.task, tasks);
    };
  }

  allowed(_reservation: Reservation, _head: PreparedJobWithCache, placement: Placement, endMs: number): boolean {
    this.sync();
    if (!this.headPlacement || byEndTime({ jobId: placement.jobId, endMs }, this.boundary) <= 0) return true;
    // On none of the head's nodes it cannot delay it: those nodes will hold no more then than now.
    if (!placement.tasks.some((t) => this.headNodes.has(t.nodeId))) return true;
    return this.shadow.fits(placement);
  }


  /** The reservation as the shadow holds it now. */
  private reservationNow(nowMs: number): Reservation {
    const planned = this.headPlacement!;
    return { jobId: this.head!.job.id, startMs: Math.max(nowMs, this.boundary.endMs), boundary: this.boundary, headPlacement: { ...planned, jobId: this.head!.job.id } };
  }

  /** Forgets the head's plan: it is found again at the next reservation. */
  private dropPlan(): void {
    if (!this.headPlacement) return;
    this.shadow.release(HEAD_ID);
    this.headPlacement = undefined;
    this.headNodes = new Set();
  }

  /** A new head: every job counted as ended is put back, and its reservation is found from scratch. */
  private newHead(head: PreparedJobWithCache): void {
    this.dropPlan();
    for (const e of this.ends) {
      if (byEndTime(e, this.boundary) > 0) break;
      this.shadow.restore(this.running.get(e.jobId)!.placement);
    }
    this.boundary = NOTHING_ENDED;
    this.head = head;
    this.improvable = false;
  }
}
