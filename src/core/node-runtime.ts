import { GPU_MILLI_PER_GPU, type Labels, type NodeResources, type NodeSpec, type NodeState } from '../protocol';
import { ZONE_LABEL } from './labels';
import type { Placement, ReasonCode, TaskPlacement } from './model';
import type { NodeGroup } from './node-group';

/** A task's resources prepared for the hot path: numbers only, extended resources as an array. */
export interface PreparedTask {
  cpuMillis: number;
  memBytes: number;
  gpus: number;
  gpuMilli: number;
  gpuMemBytes: number;
  extended: ReadonlyArray<readonly [name: string, amount: number]>;
  /** The task takes the whole node. */
  exclusive: boolean;
}

/** A node spec with allocatable filled in. */
export type ResolvedNodeSpec = NodeSpec & { allocatable: NodeResources };

/**
 * A node's live state in the cluster: its spec, lifecycle state, what is allocated on it and its latest
 * telemetry. Only requested amounts are stored; free amounts are computed, so the two cannot drift apart.
 */
export class NodeRuntime {
  state: NodeState = 'ready';
  requestedCpuMillis = 0;
  requestedMemBytes = 0;
  readonly requestedExtended = new Map<string, number>();
  /** Milli-GPUs allocated on each physical GPU. */
  gpuUsedMilli: Uint16Array;
  /** Task placements currently on the node. */
  taskCount = 0;
  /** Tasks on the node per tenant, and those of them at the `restricted` data class. */
  readonly tenantTasks = new TenantCounts();
  readonly restrictedTasks = new TenantCounts();
  /**
   * Placements with tasks on the node (ClusterState keeps it). A node holds few jobs, so an array, and
   * placements rather than ids: finding one to remove compares references, not id strings.
   */
  readonly placements: Placement[] = [];
  /** Latest power draw reported by the node's agent. */
  powerWatts = 0;
  /** Latest share of green electricity (0..1) reported by the node's agent. */
  greenShare = 0;

  /** Labels that selectors and affinity match against: the node's own plus its zone. */
  matchLabels!: Labels;
  /** zone/rack: the unit gangs try to stay within. */
  rackKey!: string;
  /** The node's id, which never changes. */
  readonly id: string;

  /**
   * Copies of the spec's pool and allocatable CPU and memory, on the node itself: every start and end and
   * every candidate visit reads them, and a read through spec.allocatable is two more objects to fetch.
   */
  pool!: NodeSpec['pool'];
  allocatable!: NodeResources;
  private allocCpuMillis!: number;
  private allocMemBytes!: number;

  /** Index bookkeeping, owned by the node's group. */
  group: NodeGroup | undefined = undefined;
  groupLocalOrdinal = -1;
  indexSlot = -1;

  constructor(
    public spec: ResolvedNodeSpec,
    /** Registration order; a stable tie-breaker while the node stays registered. */
    readonly ordinal: number,
  ) {
    this.gpuUsedMilli = new Uint16Array(spec.allocatable.gpus);
    this.id = spec.id;
    this.follow(spec);
  }

  /** Sets what is derived from the spec. */
  private follow(spec: ResolvedNodeSpec): void {
    this.matchLabels = { ...spec.labels, [ZONE_LABEL]: spec.zone };
    this.rackKey = `${spec.zone}/${spec.rack}`;
    this.pool = spec.pool;
    this.allocatable = spec.allocatable;
    this.allocCpuMillis = spec.allocatable.cpuMillis;
    this.allocMemBytes = spec.allocatable.memBytes;
  }

  /**
   * Replaces the static description. GPUs may be added at any time, and removed from the end while those
   * are free: tasks keep the GPU indices they were given (a Kubernetes node loses allocatable GPUs to
   * another scheduler's pods this way).
   */
  updateSpec(spec: ResolvedNodeSpec): void {
    this.assertCanUpdate(spec);
    const count = spec.allocatable.gpus;
    if (count !== this.gpuUsedMilli.length) {
      const next = new Uint16Array(count);
      next.set(this.gpuUsedMilli.subarray(0, Math.min(count, this.gpuUsedMilli.length)));
      this.gpuUsedMilli = next;
    }
    this.spec = spec;
    this.follow(spec);
  }

  /** Throws when `updateSpec(spec)` would drop GPUs that are allocated (checked before anything changes). */
  assertCanUpdate(spec: ResolvedNodeSpec): void {
    const count = spec.allocatable.gpus;
    if (this.gpuUsedMilli.subarray(count).some((u) => u > 0)) throw new Error(`node ${spec.id}: cannot remove GPUs ${count}..${this.gpuUsedMilli.length - 1} while they are allocated`);
  }

  get freeCpuMillis(): number {
    return this.allocCpuMillis - this.requestedCpuMillis;
  }

  get freeMemBytes(): number {
    return this.allocMemBytes - this.requestedMemBytes;
  }

  freeExtended(name: string): number {
    return (this.spec.allocatable.extended[name] ?? 0) - (this.requestedExtended.get(name) ?? 0);
  }

  get isIdle(): boolean {
    return this.taskCount === 0;
  }

  /** GPUs with nothing allocated on them. */
  wholeFreeGpus(): number {
    let n = 0;
    const used = this.gpuUsedMilli;
    for (let i = 0; i < used.length; i++) if (used[i] === 0) n++;
    return n;
  }

  /** The largest free share on any single GPU (1000 when one is entirely free). */
  maxFreeGpuMilli(): number {
    let best = 0;
    const used = this.gpuUsedMilli;
    for (let i = 0; i < used.length; i++) {
      const free = GPU_MILLI_PER_GPU - used[i];
      if (free > best) best = free;
    }
    return best;
  }

  /** Milli-GPUs allocated over all GPUs. */
  usedGpuMilli(): number {
    let sum = 0;
    for (const u of this.gpuUsedMilli) sum += u;
    return sum;
  }

  /**
   * How many tasks of this shape fit on the node now, up to `max`. Exact integer arithmetic:
   * a whole-GPU task needs entirely free GPUs, a share must fit on one GPU.
   */
  fitCount(task: PreparedTask, max: number): number {
    if (task.exclusive) return this.taskCount === 0 && this.shortfall(task) === null ? Math.min(1, max) : 0;
    let n = max;
    if (task.gpus > 0) n = Math.min(n, Math.floor(this.wholeFreeGpus() / task.gpus));
    else if (task.gpuMilli > 0) {
      let shares = 0;
      const used = this.gpuUsedMilli;
      for (let i = 0; i < used.length && shares < n; i++) shares += Math.floor((GPU_MILLI_PER_GPU - used[i]) / task.gpuMilli);
      n = Math.min(n, shares);
    }
    if (n <= 0) return 0;
    n = Math.min(n, Math.floor(this.freeCpuMillis / task.cpuMillis));
    if (task.memBytes > 0) n = Math.min(n, Math.floor(this.freeMemBytes / task.memBytes));
    for (const [name, amount] of task.extended) {
      if (amount > 0) n = Math.min(n, Math.floor(this.freeExtended(name) / amount));
    }
    return Math.max(0, n);
  }

  /**
   * Why one more task does not fit, checking dimensions in a fixed order (GPUs, CPU, memory, extended),
   * or null when it fits. Exclusive tasks also need the node idle.
   */
  shortfall(task: PreparedTask): ReasonCode | null {
    if (task.exclusive && this.taskCount > 0) return 'node-not-idle';
    if (task.gpus > 0 && this.wholeFreeGpus() < task.gpus) return 'insufficient-gpus';
    if (task.gpuMilli > 0 && this.maxFreeGpuMilli() < task.gpuMilli) return 'insufficient-gpu-share';
    if (this.freeCpuMillis < task.cpuMillis) return 'insufficient-cpu';
    if (this.freeMemBytes < task.memBytes) return 'insufficient-memory';
    for (const [name, amount] of task.extended) if (this.freeExtended(name) < amount) return 'insufficient-extended';
    return null;
  }

  /**
   * Chooses what `count` tasks get on this node (GPU indices included) without changing the node.
   * Whole GPUs: the lowest free indices. Shares: best fit, the GPU with the least free share that holds it,
   * so partly used GPUs fill up before whole ones are broken. Assumes fitCount(task) >= count.
   */
  planTasks(task: PreparedTask, count: number, firstTaskIndex: number, out: TaskPlacement[]): void {
    if (task.exclusive) {
      const alloc = this.spec.allocatable;
      out.push({
        taskIndex: firstTaskIndex,
        nodeId: this.id,
        cpuMillis: alloc.cpuMillis,
        memBytes: alloc.memBytes,
        gpuIndices: Array.from({ length: alloc.gpus }, (_, i) => i),
        gpuMilliEach: alloc.gpus > 0 ? GPU_MILLI_PER_GPU : 0,
        extended: { ...alloc.extended },
      });
      return;
    }
    const used = this.gpuUsedMilli.length > 0 && (task.gpus > 0 || task.gpuMilli > 0) ? Uint16Array.from(this.gpuUsedMilli) : undefined;
    const extended = task.extended.length > 0 ? Object.fromEntries(task.extended) : {};
    for (let t = 0; t < count; t++) {
      let gpuIndices = NO_GPUS;
      let gpuMilliEach = 0;
      if (used && task.gpus > 0) {
        gpuIndices = [];
        gpuMilliEach = GPU_MILLI_PER_GPU;
        for (let i = 0; i < used.length && gpuIndices.length < task.gpus; i++) {
          if (used[i] === 0) {
            gpuIndices.push(i);
            used[i] = GPU_MILLI_PER_GPU;
          }
        }
      } else if (used && task.gpuMilli > 0) {
        gpuMilliEach = task.gpuMilli;
        let best = -1;
        for (let i = 0; i < used.length; i++) {
          const free = GPU_MILLI_PER_GPU - used[i];
          if (free >= task.gpuMilli && (best < 0 || free < GPU_MILLI_PER_GPU - used[best])) best = i;
        }
        gpuIndices = [best];
        used[best] += task.gpuMilli;
      }
      out.push({
        taskIndex: firstTaskIndex + t,
        nodeId: this.id,
        cpuMillis: task.cpuMillis,
        memBytes: task.memBytes,
        gpuIndices,
        gpuMilliEach,
        extended,
      });
    }
  }

  /**
   * Checks that these task placements (tasks[from] up to tasks[to]) fit on the node together; returns the
   * problem or null. `cpuAndMemoryOnly`: the caller knows none holds GPUs or extended resources.
   */
  checkCanApply(tasks: readonly TaskPlacement[], from = 0, to = tasks.length, cpuAndMemoryOnly = false): string | null {
    let cpu = 0;
    let mem = 0;
    const gpuCount = this.gpuUsedMilli.length;
    const gpu = gpuCount > 0 && !cpuAndMemoryOnly ? new Int32Array(gpuCount) : undefined;
    let ext: Map<string, number> | undefined;
    for (let k = from; k < to; k++) {
      const t = tasks[k];
      cpu += t.cpuMillis;
      mem += t.memBytes;
      if (cpuAndMemoryOnly) continue;
      for (const i of t.gpuIndices) {
        if (!gpu || !Number.isInteger(i) || i < 0 || i >= gpuCount) return `GPU index ${i} does not exist on ${this.id}`;
        gpu[i] += t.gpuMilliEach;
      }
      for (const name in t.extended) {
        ext ??= new Map();
        ext.set(name, (ext.get(name) ?? 0) + t.extended[name]);
      }
    }
    if (cpu > this.freeCpuMillis) return `cpu over-allocated on ${this.id}`;
    if (mem > this.freeMemBytes) return `memory over-allocated on ${this.id}`;
    if (gpu) for (let i = 0; i < gpuCount; i++) if (gpu[i] > 0 && this.gpuUsedMilli[i] + gpu[i] > GPU_MILLI_PER_GPU) return `GPU ${i} over-allocated on ${this.id}`;
    if (ext) for (const [name, amount] of ext) if (amount > this.freeExtended(name)) return `${name} over-allocated on ${this.id}`;
    return null;
  }

  /**
   * Whether restricted data keeps the node from taking a task of `tenant`: a restricted task never shares a
   * node with another tenant's tasks, in either direction.
   */
  isolationBlocks(tenant: string, restricted: boolean): boolean {
    return (restricted ? this.tenantTasks : this.restrictedTasks).hasOtherThan(tenant);
  }

  /**
   * Takes (sign 1) or gives back (-1) the tasks of one job on this node (tasks[from] up to tasks[to]), counted
   * together; `cpuAndMemoryOnly` when none of them holds GPUs or extended resources. The caller re-indexes the node.
   */
  applyAll(tasks: readonly TaskPlacement[], from: number, to: number, sign: 1 | -1, tenant: string, restricted: boolean, cpuAndMemoryOnly = false): void {
    if (to - from === 1 && !cpuAndMemoryOnly) {
      this.apply(tasks[from], sign, tenant, restricted);
      return;
    }
    let cpuMillis = 0;
    let memBytes = 0;
    for (let k = from; k < to; k++) {
      const t = tasks[k];
      cpuMillis += t.cpuMillis;
      memBytes += t.memBytes;
      // The caller knows when the tasks hold no GPUs and no extended resources: no loops over them (a for-in
      // over an empty object per task is most of the work of a start on a CPU node).
      if (cpuAndMemoryOnly) continue;
      for (const i of t.gpuIndices) this.gpuUsedMilli[i] += sign * t.gpuMilliEach;
      for (const name in t.extended) {
        const next = (this.requestedExtended.get(name) ?? 0) + sign * t.extended[name];
        if (next === 0) this.requestedExtended.delete(name);
        else this.requestedExtended.set(name, next);
      }
    }
    this.tenantTasks.add(tenant, sign * (to - from));
    if (restricted) this.restrictedTasks.add(tenant, sign * (to - from));
    this.requestedCpuMillis += sign * cpuMillis;
    this.requestedMemBytes += sign * memBytes;
    this.taskCount += sign * (to - from);
  }

  apply(t: TaskPlacement, sign: 1 | -1, tenant: string, restricted: boolean): void {
    this.tenantTasks.add(tenant, sign);
    if (restricted) this.restrictedTasks.add(tenant, sign);
    this.requestedCpuMillis += sign * t.cpuMillis;
    this.requestedMemBytes += sign * t.memBytes;
    for (const i of t.gpuIndices) this.gpuUsedMilli[i] += sign * t.gpuMilliEach;
    for (const name in t.extended) {
      const next = (this.requestedExtended.get(name) ?? 0) + sign * t.extended[name];
      if (next === 0) this.requestedExtended.delete(name);
      else this.requestedExtended.set(name, next);
    }
    this.taskCount += sign;
  }
}

/**
 * The GPU indices of every task without GPUs: one frozen array, not one per task (a processor-level trace
 * places millions of CPU tasks, each held until its job ends). Nothing changes a placement's indices.
 */
const NO_GPUS = Object.freeze([]) as readonly number[] as number[];

/**
 * Task counts per tenant on one node. A node mostly holds one tenant's tasks, and every start and end of a
 * task changes a count: the first tenant is held inline and the others in a map made only when needed, so
 * the per-task path neither fetches more objects than this one nor grows and shrinks a hash table as
 * tenants come and go.
 */
export class TenantCounts {
  private first: string | undefined = undefined;
  private firstCount = 0;
  private others: Map<string, number> | undefined = undefined;

  /** Tenants with tasks on the node. */
  get size(): number {
    return (this.first === undefined ? 0 : 1) + (this.others?.size ?? 0);
  }

  /** Changes a tenant's count by `by`; a tenant whose count reaches 0 is forgotten. */
  add(tenant: string, by: number): void {
    if (by === 0) return;
    if (this.first === tenant) {
      this.firstCount += by;
      if (this.firstCount === 0) this.promote();
      return;
    }
    if (this.first === undefined && !this.others?.size) {
      this.first = tenant;
      this.firstCount = by;
      return;
    }
    const others = (this.others ??= new Map());
    const next = (others.get(tenant) ?? 0) + by;
    if (next === 0) others.delete(tenant);
    else others.set(tenant, next);
  }

  get(tenant: string): number {
    return this.first === tenant ? this.firstCount : (this.others?.get(tenant) ?? 0);
  }

  /** Whether a tenant other than `tenant` has tasks here. */
  hasOtherThan(tenant: string): boolean {
    if (this.first !== undefined && this.first !== tenant) return true;
    if (!this.others?.size) return false;
    for (const owner of this.others.keys()) if (owner !== tenant) return true;
    return false;
  }

  /** The first tenant left: another takes its place, if any. */
  private promote(): void {
    this.first = undefined;
    this.firstCount = 0;
    const others = this.others;
    if (!others?.size) return;
    const [tenant, count] = others.entries().next().value as [string, number];
    others.delete(tenant);
    this.first = tenant;
    this.firstCount = count;
  }
}
