import type { NodeState } from '../protocol';
import type { ReasonCode } from './model';
import type { NodeRuntime, PreparedTask } from './node-runtime';
import { OrdinalSet } from './ordinal-set';

/**
 * Nodes with identical static attributes (pool, labels, taints, GPU model, security level, allocatable)
 * form a group, like Nomad's computed node class: static filters run once per group and job instead of
 * once per node. Each group indexes its ready nodes by free capacity in a two-dimensional grid of slots,
 * so a query for "at least g free GPUs and c free cores" visits only the slots that can hold the task.
 *
 * Slot levels are monotone in the free amount (a higher level always means more free), so every node in a
 * slot strictly above the needed level fits in that dimension, every node below does not, and only the
 * boundary level needs the exact check. The dimensions:
 * - groups with GPUs: row = GPU level, column = CPU level;
 * - CPU-only groups: row = CPU level, column = memory level.
 */
export class NodeGroup {
  readonly members: (NodeRuntime | undefined)[] = [];
  private readonly freeLocalOrdinals: number[] = [];
  readonly stateCounts: Record<NodeState, number> = { ready: 0, cordoned: 0, suspect: 0, down: 0 };

  readonly hasGpus: boolean;
  readonly rows: number;
  readonly cols: number;
  private readonly slotCounts: Int32Array;
  private readonly rowCounts: Int32Array;
  private readonly slotSets: (OrdinalSet | undefined)[];
  /** Rows with at least one indexed node. */
  private readonly nonEmptyRows: OrdinalSet;
  /** Per row, the columns with at least one indexed node. */
  private readonly nonEmptyCols: OrdinalSet[];

  constructor(
    readonly id: number,
    readonly key: string,
    /** Any member: static attributes are identical across the group. */
    public representative: NodeRuntime,
  ) {
    const alloc = representative.allocatable;
    this.hasGpus = alloc.gpus > 0;
    this.rows = this.hasGpus ? GPU_WHOLE_BASE + alloc.gpus + 1 : cpuLevel(alloc.cpuMillis) + 1;
    this.cols = this.hasGpus ? cpuLevel(alloc.cpuMillis) + 1 : MEM_LEVELS;
    this.slotCounts = new Int32Array(this.rows * this.cols);
    this.rowCounts = new Int32Array(this.rows);
    this.slotSets = new Array(this.rows * this.cols);
    this.nonEmptyRows = new OrdinalSet(this.rows);
    this.nonEmptyCols = Array.from({ length: this.rows }, () => new OrdinalSet(this.cols));
  }

  /** Registered nodes in the group, in any state. */
  get size(): number {
    return this.members.length - this.freeLocalOrdinals.length;
  }

  /** Adds a node (not yet indexed). */
  add(node: NodeRuntime): void {
    const local = this.freeLocalOrdinals.pop() ?? this.members.length;
    this.members[local] = node;
    node.groupLocalOrdinal = local;
    node.group = this;
    this.stateCounts[node.state]++;
    if (node.state === 'ready') this.index(node);
  }

  /** Removes a node from the group and its index. */
  remove(node: NodeRuntime): void {
    if (node.indexSlot >= 0) this.unindex(node);
    this.stateCounts[node.state]--;
    this.members[node.groupLocalOrdinal] = undefined;
    this.freeLocalOrdinals.push(node.groupLocalOrdinal);
    node.groupLocalOrdinal = -1;
    node.group = undefined;
    if (this.representative === node) this.representative = this.members.find((m) => m !== undefined) ?? node;
  }

  /** Moves a node to a new lifecycle state; only ready nodes stay indexed. */
  changeState(node: NodeRuntime, state: NodeState): void {
    this.stateCounts[node.state]--;
    this.stateCounts[state]++;
    node.state = state;
    if (state === 'ready' && node.indexSlot < 0) this.index(node);
    else if (state !== 'ready' && node.indexSlot >= 0) this.unindex(node);
  }

  /** Re-files a node after its allocations changed: O(1). */
  reindex(node: NodeRuntime): void {
    if (node.indexSlot < 0) return;
    const slot = this.slotOf(node);
    if (slot === node.indexSlot) return;
    this.unindex(node);
    this.insert(node, slot);
  }

  /** The slot levels a task needs, and the reason for nodes below each. */
  needsFor(task: PreparedTask): SlotNeeds {
    const alloc = this.representative.allocatable;
    if (task.exclusive) {
      // Only idle nodes qualify, and an idle node sits in the slot of its whole allocatable.
      const slot = this.slotFor(alloc.gpus, alloc.gpus > 0 ? 1000 : 0, alloc.cpuMillis, alloc.memBytes);
      return { row: (slot / this.cols) | 0, col: slot % this.cols, rowIsExact: true, primaryReason: 'node-not-idle', secondaryReason: 'node-not-idle' };
    }
    if (this.hasGpus) {
      const row = task.gpus > 0 ? GPU_WHOLE_BASE + task.gpus : task.gpuMilli > 0 ? gpuShareLevel(task.gpuMilli) : 0;
      return {
        row,
        col: Math.min(cpuLevel(task.cpuMillis), this.cols - 1),
        rowIsExact: task.gpuMilli === 0,
        primaryReason: task.gpus > 0 ? 'insufficient-gpus' : 'insufficient-gpu-share',
        secondaryReason: 'insufficient-cpu',
      };
    }
    return {
      row: Math.min(cpuLevel(task.cpuMillis), cpuLevel(alloc.cpuMillis)),
      col: memLevel(task.memBytes),
      rowIsExact: task.cpuMillis % 1000 === 0,
      primaryReason: 'insufficient-cpu',
      secondaryReason: 'insufficient-memory',
    };
  }

  /**
   * Visits indexed nodes that may hold the task, tightest slots first (packing) or emptiest first
   * (spreading). Within a slot nodes come in local-ordinal order, starting at `rotation` when spreading so
   * that consecutive decisions fan out. `visit` returns CONTINUE, NEXT_GROUP or STOP.
   * Returns STOP when a visit asked to stop everything.
   */
  forEachCandidate(needs: SlotNeeds, emptiestFirst: boolean, rotation: number, visit: (node: NodeRuntime) => number): number {
    const rows = this.nonEmptyRows;
    for (let row = emptiestFirst ? rows.prev(this.rows - 1) : rows.next(needs.row); row >= needs.row; row = emptiestFirst ? rows.prev(row - 1) : rows.next(row + 1)) {
      const cols = this.nonEmptyCols[row];
      for (let col = emptiestFirst ? cols.prev(this.cols - 1) : cols.next(needs.col); col >= needs.col; col = emptiestFirst ? cols.prev(col - 1) : cols.next(col + 1)) {
        const set = this.slotSets[row * this.cols + col]!;
        const verdict = emptiestFirst ? this.visitRotated(set, rotation, visit) : this.visitInOrder(set, visit);
        if (verdict !== CONTINUE) return verdict === STOP ? STOP : CONTINUE;
      }
    }
    return CONTINUE;
  }

  /**
   * Counts the reasons of indexed nodes that forEachCandidate never offered: below the needed row they
   * lack the primary resource, below the needed column (above the needed row, or on it when that row is
   * exact) the secondary one; on a boundary row the exact check decides, through `exact`.
   */
  explainNonCandidates(needs: SlotNeeds, add: (code: ReasonCode, count: number) => void, exact: (node: NodeRuntime) => void): void {
    for (let row = this.nonEmptyRows.next(0); row >= 0; row = this.nonEmptyRows.next(row + 1)) {
      if (row < needs.row) {
        add(needs.primaryReason, this.rowCounts[row]);
        continue;
      }
      const cols = this.nonEmptyCols[row];
      for (let col = cols.next(0); col >= 0 && col < needs.col; col = cols.next(col + 1)) {
        const slot = row * this.cols + col;
        if (row > needs.row || needs.rowIsExact) add(needs.secondaryReason, this.slotCounts[slot]);
        else this.visitInOrder(this.slotSets[slot]!, (node) => (exact(node), CONTINUE));
      }
    }
  }

  /** Indexed (ready) nodes. */
  get indexedCount(): number {
    return this.stateCounts.ready;
  }

  private visitInOrder(set: OrdinalSet, visit: (node: NodeRuntime) => number): number {
    for (let i = set.next(0); i >= 0; i = set.next(i + 1)) {
      const verdict = visit(this.members[i]!);
      if (verdict !== CONTINUE) return verdict;
    }
    return CONTINUE;
  }

  private visitRotated(set: OrdinalSet, rotation: number, visit: (node: NodeRuntime) => number): number {
    const start = rotation % Math.max(1, this.members.length);
    for (let i = set.next(start); i >= 0; i = set.next(i + 1)) {
      const verdict = visit(this.members[i]!);
      if (verdict !== CONTINUE) return verdict;
    }
    for (let i = set.next(0); i >= 0 && i < start; i = set.next(i + 1)) {
      const verdict = visit(this.members[i]!);
      if (verdict !== CONTINUE) return verdict;
    }
    return CONTINUE;
  }

  private slotOf(node: NodeRuntime): number {
    // CPU-only groups never read the GPU levels: skip walking the node's GPUs (every start and end re-files a node).
    return this.hasGpus ? this.slotFor(node.wholeFreeGpus(), node.maxFreeGpuMilli(), node.freeCpuMillis, node.freeMemBytes) : this.slotFor(0, 0, node.freeCpuMillis, node.freeMemBytes);
  }

  private slotFor(wholeFreeGpus: number, maxFreeGpuMilli: number, freeCpuMillis: number, freeMemBytes: number): number {
    let row: number;
    let col: number;
    if (this.hasGpus) {
      row = wholeFreeGpus > 0 ? GPU_WHOLE_BASE + wholeFreeGpus : gpuShareLevel(maxFreeGpuMilli);
      col = cpuLevel(freeCpuMillis);
    } else {
      row = cpuLevel(freeCpuMillis);
      col = memLevel(freeMemBytes);
    }
    return Math.min(row, this.rows - 1) * this.cols + Math.min(col, this.cols - 1);
  }

  private index(node: NodeRuntime): void {
    this.insert(node, this.slotOf(node));
  }

  private insert(node: NodeRuntime, slot: number): void {
    let set = this.slotSets[slot];
    if (!set) set = this.slotSets[slot] = new OrdinalSet(this.members.length);
    set.add(node.groupLocalOrdinal);
    node.indexSlot = slot;
    const row = (slot / this.cols) | 0;
    if (this.slotCounts[slot]++ === 0) this.nonEmptyCols[row].add(slot - row * this.cols);
    if (this.rowCounts[row]++ === 0) this.nonEmptyRows.add(row);
  }

  private unindex(node: NodeRuntime): void {
    const slot = node.indexSlot;
    this.slotSets[slot]!.delete(node.groupLocalOrdinal);
    node.indexSlot = -1;
    const row = (slot / this.cols) | 0;
    if (--this.slotCounts[slot] === 0) this.nonEmptyCols[row].delete(slot - row * this.cols);
    if (--this.rowCounts[row] === 0) this.nonEmptyRows.delete(row);
  }
}

/** Visit verdicts. */
export const CONTINUE = 0;
export const NEXT_GROUP = 1;
export const STOP = 2;

/** Needed slot levels for a task in one group. */
export interface SlotNeeds {
  row: number;
  col: number;
  /** Every node in the needed row has enough of the primary resource (whole cores, whole GPUs): no boundary. */
  rowIsExact: boolean;
  primaryReason: ReasonCode;
  secondaryReason: ReasonCode;
}

/** GPU rows: 0 no free share, 1..10 the largest free share in tenths of a GPU, 10 + w for w entirely free GPUs. */
const GPU_WHOLE_BASE = 10;
/** Memory columns: 0 none free, then one per doubling from 64 MiB up to 64 TiB. */
const MEM_LEVELS = 23;

/** 0 when nothing is free, else 1 + whole free cores: requests in whole cores never hit a boundary slot. */
function cpuLevel(cpuMillis: number): number {
  return cpuMillis <= 0 ? 0 : 1 + Math.floor(cpuMillis / 1000);
}

function gpuShareLevel(freeMilli: number): number {
  return freeMilli <= 0 ? 0 : 1 + Math.floor(freeMilli / 100);
}

function memLevel(memBytes: number): number {
  if (memBytes <= 0) return 0;
  return Math.min(MEM_LEVELS - 1, 1 + Math.max(0, Math.floor(Math.log2(memBytes)) - 26));
}
