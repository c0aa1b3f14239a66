import type { ClusterState, NodeRuntime, Placement } from '../core';
import { nodeShareOf } from '../metering/attribution';
import { addedWattsByKey } from '../metering/power';
import type { NodeSpec, Pool } from '../protocol';
import type { SimEnvironment } from './cluster-file';

const J_PER_KWH = 3.6e6;

/** Energy, green energy, carbon and cost so far, in kWh, kg and CNY. */
export interface EnergyTotals {
  /** Everything the nodes drew, idle or busy. */
  kwh: number;
  greenKwh: number;
  carbonKg: number;
  cost: number;
  /** What metering charges to jobs: each task's share of its node's draw. */
  jobKwh: number;
  jobGreenKwh: number;
  jobCarbonKg: number;
  /**
   * The draw above idle and its carbon: what the work itself adds. Idle draw does not depend on the schedule
   * (the nodes stay on, and fail on their own clock), so two schedules of the same jobs differ in the
   * cluster's emissions by exactly the difference of this, over any common span.
   */
  workKwh: number;
  workCarbonKg: number;
}

interface NodePower {
  pool: Pool;
  /** What the node's share is taken of (nodes keep their spec through a run). */
  allocatable: NodeSpec['capacity'];
  zone: number;
  idle: number;
  /** Rated power above idle. */
  span: number;
  /** Share of the node its tasks hold (as metering charges it). */
  busy: number;
  down: boolean;
}

/**
 * The simulated cluster's power, with the agents' utilisation model (idle draw plus the busy share of the
 * rest of rated power) and metering's attribution (a task is charged its share of its node's draw): draw
 * per pool and zone for power caps, and energy, green energy, carbon and cost integrated over virtual time.
 */
export class EnergyModel {
  private readonly nodes = new Map<string, NodePower>();
  /** The same, by the cluster's node ordinal (starts and ends walk them without a lookup by id). */
  private readonly byOrdinal: NodePower[] = [];
  private readonly zones: string[] = [];
  private readonly zoneIndex = new Map<string, number>();
  /** Watts drawn now by each pool. */
  private readonly poolWatts: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  /** The most each pool drew at any moment of the run (what a power cap must bound; timeline samples may miss it). */
  readonly peakPoolWatts: Record<Pool, number> = { general: 0, intelligent: 0, super: 0 };
  /** Per zone: watts drawn and watts charged to jobs. */
  private zoneWatts: number[] = [];
  private zoneJobWatts: number[] = [];
  private zoneWorkWatts: number[] = [];
  private readonly totals = { j: 0, greenJ: 0, carbonG: 0, cost: 0, jobJ: 0, jobGreenJ: 0, jobCarbonG: 0, workJ: 0, workCarbonG: 0 };

  constructor(
    private readonly env: SimEnvironment,
    private readonly cluster: ClusterState,
  ) {}

  /** A node of the cluster (nodes keep their spec through a run). */
  addNode(runtime: NodeRuntime): void {
    const spec = runtime.spec;
    const rated = this.env.ratedWatts(spec);
    const idle = this.env.idleFraction * rated;
    // Added as down, then brought up: its idle draw enters the sums like any change.
    const node: NodePower = { pool: spec.pool, allocatable: spec.allocatable ?? spec.capacity, zone: this.zoneOf(spec.zone), idle, span: rated - idle, busy: 0, down: true };
    this.nodes.set(spec.id, node);
    this.byOrdinal[runtime.ordinal] = node;
    this.change(spec.pool, node, 0, false);
  }

  /** A node failed (draws nothing) or came back. */
  setDown(nodeId: string, down: boolean): void {
    const node = this.nodes.get(nodeId)!;
    this.change(node.pool, node, node.busy, down);
  }

  /** A job started (sign 1) or stopped (sign -1) on `placement`. */
  apply(placement: Placement, sign: 1 | -1): void {
    // The per-task path of every start and end: the cluster's nodes of the placement, no lookup by id, no closure.
    const { tasks, starts, nodes } = this.cluster.placedOn(placement);
    for (let i = 0; i < nodes.length; i++) {
      const node = this.byOrdinal[nodes[i]!.ordinal];
      let busy = node.busy;
      for (let k = starts[i]; k < starts[i + 1]; k++) busy = Math.max(0, busy + sign * nodeShareOf(tasks[k], node.allocatable));
      this.change(node.pool, node, busy, node.down);
    }
  }

  /** Watts a placement would add, by pool and by `zone:<name>`. */
  addedBy(placement: Placement): Map<string, number> {
    return addedWattsByKey(placement, (nodeId) => {
      const node = this.nodes.get(nodeId)!;
      return { allocatable: node.allocatable, zone: this.zones[node.zone], spanWatts: node.span };
    });
  }

  /** Watts drawn now by a pool or `zone:<name>`. */
  drawOf(key: string): number {
    if (!key.startsWith('zone:')) return this.poolWatts[key as Pool] ?? 0;
    const z = this.zoneIndex.get(key.slice('zone:'.length));
    return z === undefined ? 0 : this.zoneWatts[z];
  }

  /** Total watts and green watts now. */
  now(atMs: number): { watts: number; green: number } {
    let watts = 0;
    let green = 0;
    for (let z = 0; z < this.zones.length; z++) {
      watts += this.zoneWatts[z];
      green += this.zoneWatts[z] * this.env.greenShareAt(this.zones[z], atMs);
    }
    return { watts, green };
  }

  /** Carbon intensity of a zone's electricity at a time: the grid's, for the part that is not green. */
  carbonAt(zone: string, atMs: number): number {
    return (1 - this.env.greenShareAt(zone, atMs)) * this.env.gridCarbonAt(atMs);
  }

  /** Integrates from `fromMs` to `toMs`, over which every signal is constant. */
  integrate(fromMs: number, toMs: number): void {
    const dtS = (toMs - fromMs) / 1000;
    if (dtS <= 0) return;
    const t = this.totals;
    const price = this.env.pricePerKwhAt(fromMs);
    for (let z = 0; z < this.zones.length; z++) {
      const green = this.env.greenShareAt(this.zones[z], fromMs);
      const carbon = this.carbonAt(this.zones[z], fromMs);
      const j = this.zoneWatts[z] * dtS;
      const jobJ = this.zoneJobWatts[z] * dtS;
      const workJ = this.zoneWorkWatts[z] * dtS;
      t.j += j;
      t.greenJ += j * green;
      t.carbonG += (j / J_PER_KWH) * carbon;
      t.cost += (j / J_PER_KWH) * price;
      t.jobJ += jobJ;
      t.jobGreenJ += jobJ * green;
      t.jobCarbonG += (jobJ / J_PER_KWH) * carbon;
      t.workJ += workJ;
      t.workCarbonG += (workJ / J_PER_KWH) * carbon;
    }
  }

  totalsNow(): EnergyTotals {
    const t = this.totals;
    return { kwh: t.j / J_PER_KWH, greenKwh: t.greenJ / J_PER_KWH, carbonKg: t.carbonG / 1000, cost: t.cost, jobKwh: t.jobJ / J_PER_KWH, jobGreenKwh: t.jobGreenJ / J_PER_KWH, jobCarbonKg: t.jobCarbonG / 1000, workKwh: t.workJ / J_PER_KWH, workCarbonKg: t.workCarbonG / 1000 };
  }

  /** Applies a change to one node, keeping the sums per pool, zone and of what jobs are charged. */
  private change(pool: Pool, node: NodePower, busy: number, down: boolean): void {
    const before = this.wattsOf(node);
    const chargedBefore = node.down ? 0 : Math.min(1, node.busy) * before;
    const workBefore = this.workWattsOf(node);
    node.busy = busy;
    node.down = down;
    const after = this.wattsOf(node);
    const chargedAfter = node.down ? 0 : Math.min(1, node.busy) * after;
    const workAfter = this.workWattsOf(node);
    this.poolWatts[pool] += after - before;
    this.peakPoolWatts[pool] = Math.max(this.peakPoolWatts[pool], this.poolWatts[pool]);
    this.zoneWatts[node.zone] += after - before;
    this.zoneJobWatts[node.zone] += chargedAfter - chargedBefore;
    this.zoneWorkWatts[node.zone] += workAfter - workBefore;
  }

  private wattsOf(node: NodePower): number {
    return node.down ? 0 : node.idle + this.workWattsOf(node);
  }

  /** The draw above idle: what the node's tasks add. */
  private workWattsOf(node: NodePower): number {
    return node.down ? 0 : Math.min(1, node.busy) * node.span;
  }

  private zoneOf(zone: string): number {
    let z = this.zoneIndex.get(zone);
    if (z === undefined) {
      z = this.zones.length;
      this.zoneIndex.set(zone, z);
      this.zones.push(zone);
      this.zoneWatts.push(0);
      this.zoneJobWatts.push(0);
      this.zoneWorkWatts.push(0);
    }
    return z;
  }
}
