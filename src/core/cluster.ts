import { GPU_MILLI_PER_GPU, POOLS, type NodeSpec, type NodeState, type Pool } from '../protocol';
import type { Placement, TaskPlacement } from './model';
import { NodeGroup } from './node-group';
import { NodeRuntime, type ResolvedNodeSpec } from './node-runtime';

/** What one tenant holds in one pool. */
export interface TenantUsage {
  cpuMillis: number;
  memBytes: number;
  gpuMilli: number;
  /** Jobs holding a placement. */
  jobs: number;
}

/** Totals of one pool, for the API and metrics. */
export interface PoolSummary {
  pool: Pool;
  nodes: Record<NodeState, number>;
  allocatable: { cpuMillis: number; memBytes: number; gpus: number };
  allocated: { cpuMillis: number; memBytes: number; gpuMilli: number };
  /** GPU servers with some but not all GPU capacity allocated. */
  partlyUsedGpuNodes: number;
}

/**
 * The whole cluster as the scheduler sees it: nodes grouped and indexed per pool, and every job's
 * placement. Updated incrementally: reserve and release touch only the nodes involved, each re-filed in
 * its group's index in O(1), and release gives back exactly what reserve took.
 */
export class ClusterState {
  private readonly nodesById = new Map<string, NodeRuntime>();
  private readonly poolNodes: Record<Pool, NodeRuntime[]> = { general: [], intelligent: [], super: [] };
  private readonly poolGroups: Record<Pool, NodeGroup[]> = { general: [], intelligent: [], super: [] };
  private readonly groupsByKey = new Map<string, NodeGroup>();
  private readonly placements = new Map<string, Placement>();
  /** Per pool, what each tenant holds. */
  private readonly usage: Record<Pool, Map<string, TenantUsage>> = { general: new Map(), intelligent: new Map(), super: new Map() };
  private readonly capacity: Record<Pool, { cpuMillis: number; memBytes: number; gpuMilli: number }> = {
    general: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
    intelligent: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
    super: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
  };
  /** What placements hold in each pool (task requests; whole nodes of exclusive placements count as requested). */
  private readonly allocated: Record<Pool, { cpuMillis: number; memBytes: number; gpuMilli: number }> = {
    general: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
    intelligent: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
    super: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
  };
  private nextOrdinal = 0;
  private nextGroupId = 0;
  /**
   * Each placement's nodes as this cluster holds them, found once per placement (and again when nodes
   * change): starts and ends walk them, and a lookup by id per task costs more than the rest of the work.
   */
  private resolved = new WeakMap<PlacementIndex, { nodesVersion: number; nodes: (NodeRuntime | undefined)[] }>();

  /** Changes whenever a group appears or disappears, so per-group caches know to start over. */
  groupsVersion = 0;
  /** Changes whenever a node is added, changed or removed (mirrors such as EASY's shadow sync on it). */
  nodesVersion = 0;
  /** Changes whenever a node's lifecycle state changes. */
  statesVersion = 0;
  /** Counts reservations; spreading policies start their scan here so consecutive jobs fan out. */
  rotation = 0;
  /** Changes whenever a tenant's usage or a pool's capacity changes, so caches of fair shares know to start over. */
  usageVersion = 0;

  /** Forgets every node and placement (a rebuild starts from nothing); versions move on so caches start over. */
  reset(): void {
    this.nodesById.clear();
    this.groupsByKey.clear();
    this.placements.clear();
    this.resolved = new WeakMap();
    for (const pool of POOLS) {
      this.usage[pool].clear();
      this.poolNodes[pool] = [];
      this.poolGroups[pool] = [];
      this.capacity[pool] = { cpuMillis: 0, memBytes: 0, gpuMilli: 0 };
      this.allocated[pool] = { cpuMillis: 0, memBytes: 0, gpuMilli: 0 };
    }
    this.nextOrdinal = 0;
    this.rotation = 0;
    this.groupsVersion++;
    this.usageVersion++;
    this.nodesVersion++;
  }

  /** Registers a node or updates its description, keeping its allocations. */
  upsertNode(input: NodeSpec): NodeRuntime {
    this.nodesVersion++;
    const spec: ResolvedNodeSpec = { ...input, allocatable: input.allocatable ?? input.capacity };
    const existing = this.nodesById.get(spec.id);
    if (!existing) {
      const node = new NodeRuntime(spec, this.nextOrdinal++);
      this.nodesById.set(spec.id, node);
      this.poolNodes[spec.pool].push(node);
      this.join(node);
      return node;
    }
    if (existing.spec.pool !== spec.pool && existing.taskCount > 0) {
      throw new Error(`node ${spec.id} cannot move from pool ${existing.spec.pool} to ${spec.pool} while it runs tasks`);
    }
    // Refused changes are refused before the node leaves its group: the state stays as it was.
    existing.assertCanUpdate(spec);
    this.leave(existing);
    if (existing.spec.pool !== spec.pool) {
      removeItem(this.poolNodes[existing.spec.pool], existing);
      this.poolNodes[spec.pool].push(existing);
    }
    existing.updateSpec(spec);
    this.join(existing);
    return existing;
  }

  /** Forgets a node. Refused while tasks are placed on it: release or requeue them first. */
  removeNode(nodeId: string): void {
    const node = this.mustGetNode(nodeId);
    if (node.taskCount > 0) throw new Error(`node ${nodeId} still has ${node.taskCount} tasks placed on it`);
    this.nodesVersion++;
    this.leave(node);
    removeItem(this.poolNodes[node.spec.pool], node);
    this.nodesById.delete(nodeId);
  }

  /** Moves a node to a lifecycle state; only ready nodes are offered to placement. */
  setNodeState(nodeId: string, state: NodeState): void {
    const node = this.mustGetNode(nodeId);
    if (node.state === state) return;
    node.group!.changeState(node, state);
    this.statesVersion++;
  }

  /** Records the latest power draw and green share an agent reported. Does not touch the index. */
  setNodeTelemetry(nodeId: string, powerWatts: number, greenShare: number): void {
    const node = this.mustGetNode(nodeId);
    node.powerWatts = powerWatts;
    node.greenShare = Math.min(1, Math.max(0, greenShare));
  }

  getNode(nodeId: string): NodeRuntime | undefined {
    return this.nodesById.get(nodeId);
  }

  /** Every node, in registration order per pool. */
  nodes(): NodeRuntime[] {
    return POOLS.flatMap((pool) => this.poolNodes[pool]);
  }

  /** Nodes of one pool in registration order (the naive baseline scans these). */
  nodesOf(pool: Pool): readonly NodeRuntime[] {
    return this.poolNodes[pool];
  }

  /** Node groups of one pool, in creation order. */
  groupsOf(pool: Pool): readonly NodeGroup[] {
    return this.poolGroups[pool];
  }

  get nodeCount(): number {
    return this.nodesById.size;
  }

  placementOf(jobId: string): Placement | undefined {
    return this.placements.get(jobId);
  }

  /** Jobs holding a placement. */
  placedJobIds(): IterableIterator<string> {
    return this.placements.keys();
  }

  /**
   * Takes the resources of a placement. All or nothing: every task is checked against its node first,
   * so a placement that no longer fits throws and changes nothing.
   */
  reserve(placement: Placement): void {
    const problem = this.problemWith(placement);
    if (problem) throw new Error(`job ${placement.jobId}: ${problem}`);
    this.apply(placement);
  }

  /** Whether `reserve(placement)` would succeed now, without changing anything (look-ahead asks this often). */
  fits(placement: Placement): boolean {
    return this.problemWith(placement) === undefined;
  }

  /** Why a placement cannot be reserved now, or undefined when it can. */
  private problemWith(placement: Placement): string | undefined {
    if (this.placements.has(placement.jobId)) return 'it is already placed';
    const index = indexOf(placement);
    const nodes = this.nodesFor(index);
    const { tasks, starts, nodeIds } = index;
    for (let i = 0; i < nodes.length; i++) {
      const nodeId = nodeIds[i];
      const node = nodes[i];
      if (!node) return `node ${nodeId} is not registered`;
      if (node.pool !== placement.pool) return `node ${nodeId} is not in pool ${placement.pool}`;
      if (placement.exclusive && (starts[i + 1] - starts[i] > 1 || !node.isIdle)) return `node ${nodeId} is not free for exclusive use`;
      if (node.isolationBlocks(placement.tenant, placement.dataClass === 'restricted')) return `node ${nodeId} holds another tenant's restricted work`;
      const problem = node.checkCanApply(tasks, starts[i], starts[i + 1], index.cpuAndMemoryOnly);
      if (problem) return problem;
    }
    return undefined;
  }

  /**
   * Puts back a placement that `release` has just returned, with nothing reserved in between on its nodes
   * (look-ahead for backfilling): it fits by construction, so the checks of `reserve` are skipped.
   */
  restore(placement: Placement): void {
    this.apply(placement);
  }

  private apply(placement: Placement): void {
    const restricted = placement.dataClass === 'restricted';
    const index = indexOf(placement);
    const nodes = this.nodesFor(index);
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      applyOnNode(node, index, i, 1, placement.tenant, restricted);
      node.placements.push(placement);
    }
    this.placements.set(placement.jobId, placement);
    this.account(placement, index.demand, 1);
    this.rotation++;
  }

  /**
   * A placement's tasks grouped by node (the tasks of group i are tasks[starts[i]] up to tasks[starts[i + 1]]),
   * and those nodes as this cluster holds them (undefined where one is not registered): for per-task
   * bookkeeping outside (the simulator's energy model) without a lookup by id per task.
   */
  placedOn(placement: Placement): { tasks: readonly TaskPlacement[]; starts: readonly number[]; nodes: readonly (NodeRuntime | undefined)[] } {
    const index = indexOf(placement);
    return { tasks: index.tasks, starts: index.starts, nodes: this.nodesFor(index) };
  }

  /**
   * A placement just planned on this cluster: its tasks go, in order, `counts[i]` to `nodes[i]` (distinct
   * nodes of this cluster). Its index is made from that, without grouping the tasks or looking nodes up by
   * id (a gang of processors on one-core nodes is as many lookups as tasks).
   */
  adoptPlan(placement: Placement, nodes: readonly NodeRuntime[], counts: readonly number[]): void {
    if (indexes.has(placement.tasks)) return;
    const starts = [0];
    const nodeIds: string[] = [];
    for (let i = 0; i < nodes.length; i++) {
      starts.push(starts[i] + counts[i]);
      nodeIds.push(nodes[i].id);
    }
    const index: PlacementIndex = { tasks: placement.tasks, starts, nodeIds, demand: placementDemand(placement), cpuAndMemoryOnly: cpuAndMemoryOnly(placement.tasks) };
    indexes.set(placement.tasks, index);
    this.resolved.set(index, { nodesVersion: this.nodesVersion, nodes: nodes.slice() });
  }

  /** The nodes of a placement's groups, in the same order (undefined where a node is not registered). */
  private nodesFor(index: PlacementIndex): readonly (NodeRuntime | undefined)[] {
    const known = this.resolved.get(index);
    if (known?.nodesVersion === this.nodesVersion) return known.nodes;
    const nodes = index.nodeIds.map((nodeId) => this.nodesById.get(nodeId));
    this.resolved.set(index, { nodesVersion: this.nodesVersion, nodes });
    return nodes;
  }

  /** Gives back exactly what a job's placement took. Returns the placement, or undefined if the job held none. */
  release(jobId: string): Placement | undefined {
    const placement = this.placements.get(jobId);
    if (!placement) return undefined;
    const restricted = placement.dataClass === 'restricted';
    const index = indexOf(placement);
    const nodes = this.nodesFor(index);
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      if (!node) continue;
      applyOnNode(node, index, i, -1, placement.tenant, restricted);
      removeItem(node.placements, placement);
    }
    this.placements.delete(jobId);
    this.account(placement, index.demand, -1);
    return placement;
  }

  /**
   * An independent copy: same nodes in the same order, same states and placements. Used to look ahead
   * (backfill reservations) without touching the live state.
   */
  clone(): ClusterState {
    const copy = new ClusterState();
    for (const node of this.nodes()) {
      copy.upsertNode(node.spec);
      if (node.state !== 'ready') copy.setNodeState(node.id, node.state);
    }
    for (const placement of this.placements.values()) copy.reserve(placement);
    copy.rotation = this.rotation;
    return copy;
  }

  /** Jobs with a task on the node (a copy: release them while walking it). */
  jobsOn(nodeId: string): readonly string[] {
    return this.nodesById.get(nodeId)?.placements.map((p) => p.jobId) ?? [];
  }

  /** What a tenant holds in a pool now. */
  usageOf(tenant: string, pool: Pool): TenantUsage {
    return this.usage[pool].get(tenant) ?? NO_USAGE;
  }

  /** Every tenant holding something in a pool. */
  tenantsIn(pool: Pool): string[] {
    return [...this.usage[pool].keys()];
  }

  /** Allocatable CPU, memory and milli-GPUs of all registered nodes of a pool (fair-share denominators). */
  capacityOf(pool: Pool): { cpuMillis: number; memBytes: number; gpuMilli: number } {
    return this.capacity[pool];
  }

  /** CPU, memory and milli-GPUs allocated on a pool's nodes now. */
  allocatedOf(pool: Pool): { cpuMillis: number; memBytes: number; gpuMilli: number } {
    return this.allocated[pool];
  }

  private account(placement: Placement, demand: Demand, sign: 1 | -1): void {
    this.usageVersion++;
    const usage = this.usage[placement.pool];
    const u = usage.get(placement.tenant) ?? { cpuMillis: 0, memBytes: 0, gpuMilli: 0, jobs: 0 };
    const { cpuMillis, memBytes, gpuMilli } = demand;
    u.cpuMillis += sign * cpuMillis;
    u.memBytes += sign * memBytes;
    u.gpuMilli += sign * gpuMilli;
    u.jobs += sign;
    if (u.jobs === 0) usage.delete(placement.tenant);
    else usage.set(placement.tenant, u);
    const a = this.allocated[placement.pool];
    a.cpuMillis += sign * cpuMillis;
    a.memBytes += sign * memBytes;
    a.gpuMilli += sign * gpuMilli;
  }

  /**
   * Whether a pool's free capacity, summed over all its nodes, could hold `demand` at all: a necessary
   * condition of fitting, checked in O(1) before a search (a deep queue of large gangs fails it often).
   */
  mayHold(pool: Pool, demand: { cpuMillis: number; memBytes: number; gpuMilli: number }): boolean {
    const c = this.capacity[pool];
    const a = this.allocated[pool];
    return demand.cpuMillis <= c.cpuMillis - a.cpuMillis && demand.memBytes <= c.memBytes - a.memBytes && demand.gpuMilli <= c.gpuMilli - a.gpuMilli;
  }

  /** Totals of one pool, computed on demand (O(nodes in the pool)). */
  poolSummary(pool: Pool): PoolSummary {
    const summary: PoolSummary = {
      pool,
      nodes: { ready: 0, cordoned: 0, suspect: 0, down: 0 },
      allocatable: { cpuMillis: 0, memBytes: 0, gpus: 0 },
      allocated: { cpuMillis: 0, memBytes: 0, gpuMilli: 0 },
      partlyUsedGpuNodes: 0,
    };
    for (const node of this.poolNodes[pool]) {
      summary.nodes[node.state]++;
      const alloc = node.allocatable;
      summary.allocatable.cpuMillis += alloc.cpuMillis;
      summary.allocatable.memBytes += alloc.memBytes;
      summary.allocatable.gpus += alloc.gpus;
      summary.allocated.cpuMillis += node.requestedCpuMillis;
      summary.allocated.memBytes += node.requestedMemBytes;
      const gpuMilli = node.usedGpuMilli();
      summary.allocated.gpuMilli += gpuMilli;
      if (gpuMilli > 0 && gpuMilli < alloc.gpus * GPU_MILLI_PER_GPU) summary.partlyUsedGpuNodes++;
    }
    return summary;
  }

  private join(node: NodeRuntime): void {
    const key = groupKey(node.spec);
    let group = this.groupsByKey.get(key);
    if (!group) {
      group = new NodeGroup(this.nextGroupId++, key, node);
      this.groupsByKey.set(key, group);
      this.poolGroups[node.spec.pool].push(group);
      this.groupsVersion++;
    }
    group.add(node);
    this.addCapacity(node, 1);
  }

  private addCapacity(node: NodeRuntime, sign: 1 | -1): void {
    // Shares are use over capacity: a change of capacity changes them as a change of use does.
    this.usageVersion++;
    const c = this.capacity[node.spec.pool];
    c.cpuMillis += sign * node.allocatable.cpuMillis;
    c.memBytes += sign * node.allocatable.memBytes;
    c.gpuMilli += sign * node.allocatable.gpus * GPU_MILLI_PER_GPU;
  }

  private leave(node: NodeRuntime): void {
    const group = node.group!;
    group.remove(node);
    this.addCapacity(node, -1);
    if (group.size === 0) {
      this.groupsByKey.delete(group.key);
      removeItem(this.poolGroups[node.spec.pool], group);
      this.groupsVersion++;
    }
  }

  private mustGetNode(nodeId: string): NodeRuntime {
    const node = this.nodesById.get(nodeId);
    if (!node) throw new Error(`node ${nodeId} is not registered`);
    return node;
  }
}

/**
 * The static attributes that static filters read. Rack is left out on purpose: racks are many and only
 * gang placement looks at them, per node.
 */
function groupKey(spec: ResolvedNodeSpec): string {
  const alloc = spec.allocatable;
  return JSON.stringify([
    spec.pool,
    spec.zone,
    spec.gpuModel ?? '',
    spec.securityLevel,
    Object.entries(spec.labels).sort(byKey),
    spec.taints.map((t) => `${t.key}=${t.value}:${t.effect}`).sort(),
    alloc.cpuMillis,
    alloc.memBytes,
    alloc.gpus,
    alloc.gpuMemBytes,
    Object.entries(alloc.extended).sort(byKey),
  ]);
}

function byKey(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

const NO_USAGE: TenantUsage = Object.freeze({ cpuMillis: 0, memBytes: 0, gpuMilli: 0, jobs: 0 });

function applyOnNode(node: NodeRuntime, index: PlacementIndex, group: number, sign: 1 | -1, tenant: string, restricted: boolean): void {
  node.applyAll(index.tasks, index.starts[group], index.starts[group + 1], sign, tenant, restricted, index.cpuAndMemoryOnly);
  node.group!.reindex(node);
}

type Demand = { cpuMillis: number; memBytes: number; gpuMilli: number };

/** What every start and end of a placement walks: its tasks grouped by node, and its demand summed. */
interface PlacementIndex {
  /**
   * The placement's tasks grouped by node, nodes in order of first appearance: group i is tasks[starts[i]]
   * up to tasks[starts[i + 1]], on node nodeIds[i]. A job's tasks on one node are checked and applied together.
   */
  tasks: readonly TaskPlacement[];
  starts: readonly number[];
  nodeIds: readonly string[];
  demand: Demand;
  /** No task holds GPUs or extended resources. */
  cpuAndMemoryOnly: boolean;
}

const indexes = new WeakMap<readonly TaskPlacement[], PlacementIndex>();

/**
 * A placement's index, made once per task list: placements are immutable, and look-ahead reserves and
 * releases the same ones many times (arrays, so walking them makes no iterator entries).
 */
function indexOf(placement: Placement): PlacementIndex {
  const tasks = placement.tasks;
  let index = indexes.get(tasks);
  if (index) return index;
  const byNode = new Map<string, TaskPlacement[]>();
  for (const t of tasks) {
    const list = byNode.get(t.nodeId);
    if (list) list.push(t);
    else byNode.set(t.nodeId, [t]);
  }
  const grouped: TaskPlacement[] = [];
  const starts = [0];
  for (const list of byNode.values()) {
    for (const t of list) grouped.push(t);
    starts.push(grouped.length);
  }
  index = { tasks: grouped, starts, nodeIds: [...byNode.keys()], demand: placementDemand(placement), cpuAndMemoryOnly: cpuAndMemoryOnly(tasks) };
  indexes.set(tasks, index);
  return index;
}

function cpuAndMemoryOnly(tasks: readonly TaskPlacement[]): boolean {
  for (const t of tasks) {
    if (t.gpuIndices.length > 0) return false;
    for (const _ in t.extended) return false;
  }
  return true;
}

function removeItem<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

/** What a placement holds, summed over its tasks (the counterpart of placement.ts's demandOf for a job). */
export function placementDemand(placement: Placement): Demand {
  const demand = { cpuMillis: 0, memBytes: 0, gpuMilli: 0 };
  for (const t of placement.tasks) {
    demand.cpuMillis += t.cpuMillis;
    demand.memBytes += t.memBytes;
    demand.gpuMilli += t.gpuIndices.length * t.gpuMilliEach;
  }
  return demand;
}
