import type { TaskPlacement } from './model';
import type { NodeRuntime, PreparedTask } from './node-runtime';

/** What a rack (zone/rack) can hold of a gang, from the nodes seen so far. */
interface RackTally {
  key: string;
  capacity: number;
  nodes: NodeRuntime[];
  counts: number[];
}

/**
 * Collects, node by node, how many tasks of a gang each feasible node holds, per rack, and chooses
 * where the gang goes: one rack if any rack can hold all of it (the first to fill up in scan order, which
 * follows the pool's pack/spread order), otherwise the fewest racks (largest first).
 *
 * The search for a single rack is bounded: once the nodes seen could hold the gang across racks and
 * `searchNodes` feasible nodes have been seen, it settles for the fewest racks among them. A full scan is
 * made only when the gang does not fit yet, so the answer to "does it fit" stays exact.
 */
export class GangTally {
  private readonly racks = new Map<string, RackTally>();
  private filled: RackTally | null = null;
  /** Tasks the nodes seen so far can hold in all. */
  totalCapacity = 0;
  /** Nodes seen that hold at least one task. */
  nodesWithRoom = 0;
  /** After a successful assign: the nodes the gang went to, in task order, and how many tasks each got. */
  readonly plannedNodes: NodeRuntime[] = [];
  readonly plannedCounts: number[] = [];

  constructor(
    private readonly tasks: number,
    private readonly searchNodes = Infinity,
  ) {}

  /** Adds a node holding `count` tasks; returns true once the search can stop. */
  add(node: NodeRuntime, count: number): boolean {
    const key = node.rackKey;
    let rack = this.racks.get(key);
    if (!rack) {
      rack = { key, capacity: 0, nodes: [], counts: [] };
      this.racks.set(key, rack);
    }
    rack.nodes.push(node);
    rack.counts.push(count);
    rack.capacity += count;
    this.totalCapacity += count;
    this.nodesWithRoom++;
    if (rack.capacity >= this.tasks && !this.filled) this.filled = rack;
    return this.filled !== null || (this.totalCapacity >= this.tasks && this.nodesWithRoom >= this.searchNodes);
  }

  /** Task placements for the whole gang, or null when the nodes seen cannot hold it. */
  assign(task: PreparedTask): TaskPlacement[] | null {
    let chosen: RackTally[];
    if (this.filled) chosen = [this.filled];
    else if (this.totalCapacity >= this.tasks) {
      // Fewest racks: taking the largest first minimises how many are needed to cover the gang.
      const sorted = [...this.racks.values()].sort((a, b) => b.capacity - a.capacity || (a.key < b.key ? -1 : 1));
      chosen = [];
      let covered = 0;
      for (const rack of sorted) {
        chosen.push(rack);
        covered += rack.capacity;
        if (covered >= this.tasks) break;
      }
    } else return null;
    const out: TaskPlacement[] = [];
    for (const rack of chosen) {
      for (let i = 0; i < rack.nodes.length && out.length < this.tasks; i++) {
        const count = Math.min(rack.counts[i], this.tasks - out.length);
        rack.nodes[i].planTasks(task, count, out.length, out);
        this.plannedNodes.push(rack.nodes[i]);
        this.plannedCounts.push(count);
      }
    }
    return out;
  }
}
