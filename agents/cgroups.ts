import { mkdir as mkdirAsync, readdir as readdirAsync, rm as rmAsync, rmdir as rmdirAsync, writeFile as writeFileAsync } from 'node:fs/promises';
import { mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Enforcement, MeasuredUsage } from '../src/protocol';

/**
 * Per-task cgroups. Detection reads the mount table (never guesses from paths): the unified hierarchy
 * (v2) when a cgroup2 mount offers the cpu, memory and pids controllers, else v1 when the cpu, cpuacct,
 * memory and pids controllers are mounted (cpuset and devices are used when present), else none.
 * Each task gets `<hierarchy>/<parent>/<nodeId>/<task>`: a CPU quota from cpuMillis (or an exclusive
 * cpuset for whole cores), a memory limit from memBytes (no swap), a pids limit and, on v1, a devices
 * list that hides GPUs the task was not given. Its CPU seconds, peak memory and OOM kills are read back.
 */

const V1_REQUIRED = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
const V1_OPTIONAL = ['cpuset', 'devices'] as const;
type V1Controller = (typeof V1_REQUIRED)[number] | (typeof V1_OPTIONAL)[number];
const V2_REQUIRED = ['cpu', 'memory', 'pids'] as const;

/** Emptied task cgroups kept for reuse (v1; QY_CGROUP_POOL). */
export const DEFAULT_POOL_SIZE = 64;
/** Pooled cgroups of each kind (with exclusive cores, without) made at start, within the pool's size. */
const DEFAULT_PREFILL = 4;
/** A pooled cgroup left holding more than this (page cache of its last task) is emptied before reuse. */
const POOL_RECLAIM_ABOVE_BYTES = 1024 * 1024;

/** CFS period of every task cgroup: quota = cpuMillis × period / 1000. */
export const CFS_PERIOD_US = 100_000;
/** The kernel's smallest CFS quota. */
const MIN_QUOTA_US = 1_000;

export type CgroupDetection =
  | { version: 'v2'; root: string; cpuset: boolean }
  | { version: 'v1'; roots: Partial<Record<V1Controller, string>> }
  | { version: 'none'; reason: string };

export interface Mount {
  target: string;
  type: string;
  options: string[];
}

/** Parses /proc/self/mounts (octal escapes such as \040 in paths decoded). */
export function parseMounts(text: string): Mount[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map(([, target, type, options]) => ({ target: unescape(target), type, options: options.split(',') }));
}

/** Which cgroup hierarchy this machine offers, from its mount table; `read` reads cgroup.controllers. */
export function detectCgroups(mountsText: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): CgroupDetection {
  const mounts = parseMounts(mountsText);
  const notes: string[] = [];
  for (const m of mounts.filter((x) => x.type === 'cgroup2')) {
    let controllers: string[];
    try {
      controllers = read(join(m.target, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean);
    } catch {
      controllers = [];
    }
    const missing = V2_REQUIRED.filter((c) => !controllers.includes(c));
    if (missing.length === 0) return { version: 'v2', root: m.target, cpuset: controllers.includes('cpuset') };
    notes.push(`cgroup2 at ${m.target} lacks the ${missing.join(', ')} controller(s)`);
  }
  const roots: Partial<Record<V1Controller, string>> = {};
  for (const m of mounts.filter((x) => x.type === 'cgroup')) {
    for (const c of [...V1_REQUIRED, ...V1_OPTIONAL]) if (m.options.includes(c) && roots[c] === undefined) roots[c] = m.target;
  }
  const missing = V1_REQUIRED.filter((c) => roots[c] === undefined);
  if (missing.length === 0) return { version: 'v1', roots };
  if (Object.keys(roots).length > 0) notes.push(`cgroup v1 lacks the ${missing.join(', ')} controller(s)`);
  return { version: 'none', reason: notes.length > 0 ? notes.join('; ') : 'no cgroup hierarchy is mounted' };
}

/** CFS quota in µs per period for a CPU allocation in milli-cores. */
export function cpuQuotaUs(cpuMillis: number): number {
  return Math.max(MIN_QUOTA_US, Math.round((cpuMillis * CFS_PERIOD_US) / 1000));
}

/** Parses a cpuset list such as `0-3,8,10-11`. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}

/**
 * Whole cores handed out exclusively: a task asking for N whole cores gets N cores nobody else runs on;
 * every other task runs on the cores left (all of them when none are left).
 */
export class CpuSetAllocator {
  private readonly taken = new Map<string, number[]>();

  constructor(private readonly cpus: number[]) {}

  /** N free cores for `owner`, or undefined when fewer are free (the task then gets a quota only). */
  take(owner: string, n: number): number[] | undefined {
    const used = new Set([...this.taken.values()].flat());
    const free = this.cpus.filter((c) => !used.has(c));
    // Always leave one core for the tasks that share.
    if (n < 1 || free.length - n < 1) return undefined;
    const mine = free.slice(0, n);
    this.taken.set(owner, mine);
    return mine;
  }

  release(owner: string): boolean {
    return this.taken.delete(owner);
  }

  /** The cores of tasks that share. */
  shared(): number[] {
    const used = new Set([...this.taken.values()].flat());
    const left = this.cpus.filter((c) => !used.has(c));
    return left.length > 0 ? left : this.cpus;
  }
}

/** What a task's cgroup limits. */
export interface TaskLimits {
  cpuMillis: number;
  memBytes: number;
  pidsMax: number;
  gpuIndices: number[];
}

/** The v1 cpuset cgroup of the tasks without exclusive cores, beside the tasks' own cgroups. */
const SHARED = '_shared';

/** GPU device nodes (NVIDIA, Ascend) and their index, to hide unassigned ones (v1 devices controller). */
const GPU_DEVICE = /^(nvidia|davinci)(\d+)$/;

const write = (dir: string, file: string, value: string | number) => writeFileSync(join(dir, file), String(value));
const tryWrite = (dir: string, file: string, value: string | number) => {
  try {
    write(dir, file, value);
    return true;
  } catch {
    return false;
  }
};
const readText = (dir: string, file: string): string | undefined => {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
};
const keyedValue = (text: string | undefined, key: string): number | undefined => {
  const m = text && new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

/** CPU seconds a cgroup has used: `cpu.stat`'s usage_usec on v2, `cpuacct.usage` (ns) in its cpuacct directory on v1. */
export function cgroupCpuSeconds(version: 'v1' | 'v2', dir: string): number {
  if (version === 'v2') return (keyedValue(readText(dir, 'cpu.stat'), 'usage_usec') ?? 0) / 1e6;
  return Number(readText(dir, 'cpuacct.usage') ?? 0) / 1e9;
}

/** One task's cgroup (one directory per v1 controller hierarchy, one on v2). */
export class TaskCgroup {
  /** The limits written to it (a pooled cgroup's next task writes only what differs). */
  limits: TaskLimits | undefined;
  /** The pool it goes back to when emptied (v1; see CgroupManager's pools); none: removed. */
  pool: TaskCgroup[] | undefined;
  /** OOM kills counted before the current task (a pooled cgroup's counter cannot be reset). */
  oomKillsBefore = 0;
  /** Who holds its exclusive cores, if any: the task's name (a pooled cgroup's own name is its slot's). */
  owner: string;

  constructor(
    private readonly manager: CgroupManager,
    readonly name: string,
    /** Distinct directories of this cgroup, by controller. */
    readonly dirs: Partial<Record<V1Controller, string>> & { all: string[] },
    /** Cgroups the task joins without owning them (v1: the node's shared cpuset). */
    private readonly shared: string[] = [],
  ) {
    this.owner = name;
  }

  /** Its memory limit, if it has one. */
  get memLimitBytes(): number | undefined {
    return this.limits && this.limits.memBytes > 0 ? this.limits.memBytes : undefined;
  }

  /** Its directories, one per hierarchy. */
  get directories(): string[] {
    return this.dirs.all;
  }

  /** The cgroup.procs files a process writes its pid to, to join this cgroup. */
  get procsFiles(): string[] {
    return [...this.dirs.all, ...this.shared].map((d) => join(d, 'cgroup.procs'));
  }

  /** CPU seconds and peak memory so far. */
  usage(): MeasuredUsage {
    if (this.manager.version === 'v2') {
      const dir = this.dirs.all[0];
      const peak = Number(readText(dir, 'memory.peak') ?? readText(dir, 'memory.current') ?? 0);
      return { cpuSeconds: cgroupCpuSeconds('v2', dir), peakMemBytes: peak };
    }
    const peak = Number(readText(this.dirs.memory!, 'memory.max_usage_in_bytes') ?? 0);
    return { cpuSeconds: cgroupCpuSeconds('v1', this.dirs.cpuacct!), peakMemBytes: peak };
  }

  /** Whether the kernel's OOM killer killed a process of this task (it hit its memory limit). */
  oomKilled(): boolean {
    if (this.manager.version === 'v2') return (keyedValue(readText(this.dirs.all[0], 'memory.events'), 'oom_kill') ?? 0) > 0;
    const kills = this.oomKills();
    if (kills !== undefined) return kills > this.oomKillsBefore;
    return Number(readText(this.dirs.memory!, 'memory.failcnt') ?? 0) > 0; // kernels before 4.13
  }

  /** v1: the memory cgroup's OOM kill counter (undefined on kernels before 4.13). */
  oomKills(): number | undefined {
    return keyedValue(readText(this.dirs.memory!, 'memory.oom_control'), 'oom_kill');
  }

  /** Processes still in the cgroup. */
  pids(): number[] {
    const text = readText(this.dirs.all[0], 'cgroup.procs') ?? '';
    return text.split('\n').filter(Boolean).map(Number);
  }

  /** Sends a signal to every process of the task, including those that left its process group. */
  signalAll(signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL' && this.manager.version === 'v2' && tryWrite(this.dirs.all[0], 'cgroup.kill', 1)) return;
    for (const pid of this.pids()) killQuietly(pid, signal);
  }

  /**
   * Kills what is left and removes the cgroup (retrying while the kernel still counts exiting processes); a
   * pooled cgroup left empty goes back to the pool instead.
   */
  async remove(): Promise<void> {
    this.manager.released(this.owner);
    if (this.pool) {
      this.signalAll('SIGKILL');
      if (this.pids().length === 0 && (await this.manager.putBack(this, this.pool))) return;
    }
    for (let i = 0; i < 50; i++) {
      this.signalAll('SIGKILL');
      let left = 0;
      // Off the event loop, like the mkdir (see createAsync).
      const removed = await Promise.allSettled(this.dirs.all.map((dir) => removeDirAsync(dir)));
      for (const r of removed) if (r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code !== 'ENOENT') left++;
      if (left === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Creates and cleans the agent's cgroups under `<hierarchy>/<parent>/<nodeId>`. `open` checks that a
 * cgroup can really be created there (not root, read-only: `none` with the reason).
 */
export class CgroupManager {
  private readonly bases: Partial<Record<V1Controller, string>> & { all: string[] };
  private readonly cpus: CpuSetAllocator | undefined;
  /**
   * v1: one cpuset cgroup the tasks without exclusive cores share (the cores nobody has exclusively), so
   * only exclusive tasks pay for a cpuset cgroup of their own.
   */
  private readonly sharedCpuset: string | undefined;
  /** GPU device nodes of /dev (index, major, minor); v1 denies the unassigned ones per task. */
  private readonly gpuDevices: { index: number; major: number; minor: number }[];
  private readonly sharedDirs = new Map<string, string>();
  /** Why whole-core tasks get no exclusive cores here (the node declares more cores than it has), if so. */
  readonly noExclusiveCores: string | undefined;
  readonly devices: boolean;
  /**
   * v1: emptied task cgroups kept for the next tasks, up to `poolSize`. Making a cgroup costs a mkdir per
   * hierarchy and its limit writes, removing it an rmdir per hierarchy; all of them take the kernel's cgroup
   * locks, and a memory cgroup removed with page cache still charged lingers as an offline ("zombie") cgroup.
   * A reused one costs two counter resets and the limits that differ. Only on v1, whose CPU and peak-memory
   * counters can be reset, and only for tasks without GPU devices to hide; tasks with exclusive cores (a
   * cpuset of their own) take theirs from a pool of their own. `poolSize` bounds both pools together.
   */
  private readonly pools = { shared: [] as TaskCgroup[], exclusive: [] as TaskCgroup[] };
  private slots = 0;
  /** Pooled cgroups on their way back (being emptied of page cache). */
  private returning = 0;

  private constructor(
    private readonly detection: Extract<CgroupDetection, { version: 'v1' | 'v2' }>,
    parent: string,
    nodeId: string,
    private readonly poolSize = 0,
    declaredCpuMillis?: number,
  ) {
    const sub = join(parent, nodeId);
    if (detection.version === 'v2') {
      this.bases = { all: [join(detection.root, sub)] };
      this.devices = false;
    } else {
      const bases: Partial<Record<V1Controller, string>> & { all: string[] } = { all: [] };
      for (const [c, root] of Object.entries(detection.roots) as [V1Controller, string][]) {
        bases[c] = join(root, sub);
        if (!bases.all.includes(bases[c])) bases.all.push(bases[c]);
      }
      this.bases = bases;
      this.devices = detection.roots.devices !== undefined;
    }
    const cpusetRoot = detection.version === 'v2' ? (detection.cpuset ? detection.root : undefined) : detection.roots.cpuset;
    const cpuList = cpusetRoot ? readText(cpusetRoot, detection.version === 'v2' ? 'cpuset.cpus.effective' : 'cpuset.cpus') : undefined;
    const cpuIds = cpuList?.trim() ? parseCpuList(cpuList) : [];
    if (cpuIds.length > 0 && declaredCpuMillis !== undefined && declaredCpuMillis > cpuIds.length * 1000) {
      this.noExclusiveCores = `no exclusive cores: the node declares ${+(declaredCpuMillis / 1000).toFixed(3)} cores on ${cpuIds.length} CPUs (CPU quotas only)`;
    }
    this.cpus = cpuIds.length > 0 && !this.noExclusiveCores ? new CpuSetAllocator(cpuIds) : undefined;
    this.sharedCpuset = detection.version === 'v1' && this.bases.cpuset && this.cpus ? join(this.bases.cpuset, SHARED) : undefined;
    this.gpuDevices = this.devices
      ? safeReaddir('/dev').flatMap((entry) => {
          const m = GPU_DEVICE.exec(entry);
          const st = m ? statSafe(join('/dev', entry)) : undefined;
          if (!m || !st?.isCharacterDevice()) return [];
          return [{ index: Number(m[2]), major: Math.floor(st.rdev / 256) & 0xfff, minor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) }];
        })
      : [];
  }

  get version(): 'v1' | 'v2' {
    return this.detection.version;
  }

  /** Where the task cgroups live (the first hierarchy's directory). */
  get base(): string {
    return this.bases.all[0];
  }

  /**
   * Opens the agent's cgroups, or says why it cannot: the hierarchy is detected from `mountsText`, then
   * the parent directories are created and a probe cgroup is created and removed.
   *
   * `declaredCpuMillis`: the CPU the agent's nodes register (summed). Whole-core tasks get exclusive cores only
   * where that fits the CPUs this machine has: on a node that declares more cores than it has, one task would
   * hold a real core alone while the others (which the scheduler placed as if there were enough) crowd the rest,
   * and every exclusive start and end would move the shared tasks between cores. There every task gets its
   * CPU quota only, and the enforcement's reason says so.
   */
  static open(options: { nodeId: string; parent?: string; mountsText?: string; poolSize?: number; declaredCpuMillis?: number }): { manager?: CgroupManager; enforcement: Pick<Enforcement, 'cgroups' | 'reason'> } {
    let mounts = options.mountsText;
    try {
      mounts ??= readFileSync('/proc/self/mounts', 'utf8');
    } catch (err) {
      return { enforcement: { cgroups: 'none', reason: `cannot read the mount table: ${(err as Error).message}` } };
    }
    const detection = detectCgroups(mounts);
    if (detection.version === 'none') return { enforcement: { cgroups: 'none', reason: detection.reason } };
    const manager = new CgroupManager(detection, options.parent ?? 'qingyang', options.nodeId, options.poolSize ?? DEFAULT_POOL_SIZE, options.declaredCpuMillis);
    try {
      manager.prepare();
      const probe = manager.create('probe', { cpuMillis: 1000, memBytes: 64 * 1024 * 1024, pidsMax: 16, gpuIndices: [] });
      for (const dir of probe.directories) removeDir(dir);
      manager.released('probe');
    } catch (err) {
      return { enforcement: { cgroups: 'none', reason: `cannot create cgroups under ${manager.base}: ${(err as Error).message}` } };
    }
    const gpus = detection.version === 'v1' && !manager.devices ? 'no devices controller: GPUs are hidden by environment only' : detection.version === 'v2' ? 'v2: GPUs are hidden by environment only (no devices controller)' : undefined;
    const reason = [gpus, manager.noExclusiveCores].filter(Boolean).join('; ') || undefined;
    return { manager, enforcement: { cgroups: detection.version, ...(reason ? { reason } : {}) } };
  }

  /** Creates the parent directories and, on v2, delegates the controllers down to them. */
  private prepare(): void {
    if (this.detection.version === 'v2') {
      const root = this.detection.root;
      const enable = ['+cpu', '+memory', '+pids', ...(this.detection.cpuset ? ['+cpuset'] : [])].join(' ');
      let dir = root;
      for (const part of this.base.slice(root.length + 1).split('/')) {
        write(dir, 'cgroup.subtree_control', enable);
        dir = join(dir, part);
        mkdirSync(dir, { recursive: true });
      }
      write(dir, 'cgroup.subtree_control', enable);
      return;
    }
    for (const base of this.bases.all) mkdirSync(base, { recursive: true });
    // A v1 cpuset cgroup takes no process before its cpus and mems are set: copy them down from the root.
    const root = this.detection.roots.cpuset;
    if (root) {
      let dir = root;
      for (const part of this.bases.cpuset!.slice(root.length + 1).split('/')) {
        const child = join(dir, part);
        for (const file of ['cpuset.cpus', 'cpuset.mems']) if (!readText(child, file)?.trim()) write(child, file, readText(dir, file)!.trim());
        dir = child;
      }
    }
    if (this.sharedCpuset) {
      mkdirSync(this.sharedCpuset, { recursive: true });
      write(this.sharedCpuset, 'cpuset.mems', readText(this.bases.cpuset!, 'cpuset.mems')!.trim());
      write(this.sharedCpuset, 'cpuset.cpus', this.cpus!.shared().join(','));
    }
  }

  /** Removes cgroups left by an earlier run of this agent (killing what still runs in them). Returns how many. */
  async cleanStale(): Promise<number> {
    this.pools.shared.length = this.pools.exclusive.length = 0;
    const names = new Set<string>();
    for (const base of this.bases.all) {
      for (const entry of safeReaddir(base)) if (entry !== SHARED && statSafe(join(base, entry))?.isDirectory()) names.add(entry);
    }
    for (const name of names) await this.handle(name, this.bases.all).remove();
    // What still runs in the shared cpuset belonged to tasks of an earlier run too.
    if (this.sharedCpuset) for (const pid of (readText(this.sharedCpuset, 'cgroup.procs') ?? '').split('\n').filter(Boolean)) killQuietly(Number(pid));
    return names.size;
  }

  /** Removes every cgroup of this agent's node, its own directory too (tests; an agent leaves it for its next run). */
  async dispose(): Promise<void> {
    await this.cleanStale();
    for (const dir of [...(this.sharedCpuset ? [this.sharedCpuset] : []), ...this.bases.all]) {
      try {
        removeDir(dir);
      } catch {
        // still in use
      }
    }
  }

  /** Creates the cgroup of a task and sets its limits. */
  create(key: string, limits: TaskLimits): TaskCgroup {
    const plan = this.plan(key, limits);
    for (const dir of plan.cg.directories) mkdirSync(dir, { recursive: true });
    return this.limit(plan, limits);
  }

  /**
   * The same, with the directories made on libuv's thread pool: on a busy node a cgroup mkdir (as an rmdir)
   * waits a millisecond or more on the kernel's cgroup locks, which the agent's event loop should not.
   */
  async createAsync(key: string, limits: TaskLimits): Promise<TaskCgroup> {
    let plan = this.plan(key, limits);
    const pool = this.poolOf(plan);
    if (pool) {
      const reused = pool.pop();
      if (reused) {
        try {
          return this.refit(reused, plan, limits);
        } catch {
          // A limit the kernel refused (a lower memory limit it could not reclaim down to): a new cgroup instead.
          reused.pool = undefined;
          reused.owner = reused.name; // the task's exclusive cores stay taken for the new cgroup
          await reused.remove();
        }
      }
      const cg = this.slot(plan.bases, plan.shared);
      cg.owner = plan.name;
      plan = { ...plan, name: cg.name, cg };
    }
    try {
      await makeDirs(plan.cg);
    } catch (err) {
      this.released(plan.cg.owner);
      throw err;
    }
    const cg = this.limit(plan, limits);
    if (pool) this.joinPool(cg, pool);
    return cg;
  }

  /**
   * Makes up to `perPool` empty cgroups for each pool (tasks with exclusive cores, tasks without; v1, within
   * the pools' size), so that the first tasks take one as later tasks do: making a cgroup waits on the
   * kernel's cgroup locks, and right after a start every agent makes its first ones at once. Each gets its
   * limits from its first task. Returns how many it made.
   */
  async prefill(perPool = Math.min(DEFAULT_PREFILL, Math.floor(this.poolSize / 2))): Promise<number> {
    let made = 0;
    // Tasks have exclusive cores only where there is a shared cpuset to take them from.
    for (const exclusive of this.sharedCpuset ? [false, true] : [false]) {
      const { bases, shared } = this.basesOf(exclusive);
      const pool = this.poolOf({ bases });
      if (!pool) continue;
      for (let i = 0; i < perPool && this.poolHasRoom(); i++) {
        const cg = this.slot(bases, shared);
        try {
          await makeDirs(cg);
        } catch {
          return made; // tasks make theirs when they come
        }
        this.joinPool(cg, pool);
        pool.push(cg);
        made++;
      }
    }
    return made;
  }

  /** A new pooled cgroup: named for its slot, not for a task, since it will hold many. */
  private slot(bases: string[], shared: string[]): TaskCgroup {
    return this.handle(`slot-${++this.slots}`, bases, shared);
  }

  /** Makes a cgroup pooled: it goes back to `pool` when emptied, its OOM kills counted from where they stand. */
  private joinPool(cg: TaskCgroup, pool: TaskCgroup[]): void {
    cg.pool = pool;
    cg.oomKillsBefore = cg.oomKills() ?? 0;
  }

  /** Whether the pools (with the cgroups on their way back) hold fewer than `poolSize`. */
  private poolHasRoom(): boolean {
    return this.pools.shared.length + this.pools.exclusive.length + this.returning < this.poolSize;
  }

  /** The pool a task's cgroup comes from: v1, no GPU devices to hide; with a cpuset of its own or without. */
  private poolOf(plan: { bases: string[] }): TaskCgroup[] | undefined {
    if (this.poolSize === 0 || this.detection.version !== 'v1' || plan.bases.includes(this.bases.devices!)) return undefined;
    return plan.bases.includes(this.bases.cpuset!) ? this.pools.exclusive : this.pools.shared;
  }

  /** A pooled cgroup made ready for its next task: the limits that differ written, its counters reset. */
  private refit(cg: TaskCgroup, plan: { name: string; exclusive: number[] | undefined; bases: string[] }, limits: TaskLimits): TaskCgroup {
    cg.owner = plan.name;
    this.setLimits(cg, limits, plan.exclusive, plan.bases, cg.limits);
    cg.limits = limits;
    write(cg.dirs.cpuacct!, 'cpuacct.usage', 0);
    write(cg.dirs.memory!, 'memory.max_usage_in_bytes', 0);
    tryWrite(cg.dirs.memory!, 'memory.failcnt', 0);
    cg.oomKillsBefore = cg.oomKills() ?? 0;
    return cg;
  }

  /**
   * Takes an emptied pooled cgroup back, unless the pool is full. Page cache its task left charged to it
   * (more than a little) is reclaimed first, off the event loop, so the next task's peak does not count it.
   */
  async putBack(cg: TaskCgroup, pool: TaskCgroup[]): Promise<boolean> {
    // Counted from here: two tasks ending together must not both find room for one.
    if (!this.poolHasRoom()) return false;
    this.returning++;
    try {
      if (Number(readText(cg.dirs.memory!, 'memory.usage_in_bytes') ?? 0) > POOL_RECLAIM_ABOVE_BYTES) await writeFileAsync(join(cg.dirs.memory!, 'memory.force_empty'), '0');
    } catch {
      return false;
    } finally {
      this.returning--;
    }
    pool.push(cg);
    return true;
  }

  private plan(key: string, limits: TaskLimits) {
    const name = key.replace(/[^A-Za-z0-9_.-]/g, '_');
    const wholeCores = limits.cpuMillis % 1000 === 0 ? limits.cpuMillis / 1000 : 0;
    const exclusive = wholeCores > 0 ? this.cpus?.take(name, wholeCores) : undefined;
    const { bases, shared } = this.basesOf(exclusive !== undefined);
    const cg = this.handle(name, bases, shared);
    return { name, exclusive, bases, shared, cg };
  }

  /**
   * The hierarchies a task's cgroup has directories in, and the cgroups it joins besides: own cgroups only
   * where they are needed, so no cpuset of its own without exclusive cores (v1: the shared one), and no
   * devices cgroup on a node without GPU device nodes.
   */
  private basesOf(exclusive: boolean): { bases: string[]; shared: string[] } {
    // A cpuset of its own: only where there are cores to give (none on a node that declares more than it has).
    const ownCpuset = this.cpus !== undefined && (exclusive || !this.sharedCpuset);
    const bases = this.bases.all.filter((b) => (b !== this.bases.cpuset || ownCpuset) && (b !== this.bases.devices || this.gpuDevices.length > 0));
    return { bases, shared: exclusive || !this.sharedCpuset ? [] : [this.sharedCpuset] };
  }

  /** Sets the limits of a cgroup just made; on failure removes it again. */
  private limit(plan: { name: string; exclusive: number[] | undefined; bases: string[]; cg: TaskCgroup }, limits: TaskLimits): TaskCgroup {
    try {
      this.setLimits(plan.cg, limits, plan.exclusive, plan.bases);
      plan.cg.limits = limits;
    } catch (err) {
      for (const d of plan.cg.directories) {
        try {
          removeDir(d);
        } catch {
          // removed by cleanStale at the next start
        }
      }
      this.released(plan.cg.owner);
      throw err;
    }
    return plan.cg;
  }

  /**
   * Writes a cgroup's limits; with `before` (a pooled cgroup's previous task's), only those that differ, and
   * not what a new cgroup is given once (the CFS period, swappiness, cpuset.mems, the devices list).
   */
  private setLimits(cg: TaskCgroup, limits: TaskLimits, exclusive: number[] | undefined, bases: string[], before?: TaskLimits): void {
    const name = cg.name;
    if (this.detection.version === 'v2') {
      const d = join(this.base, name);
      write(d, 'cpu.max', `${cpuQuotaUs(limits.cpuMillis)} ${CFS_PERIOD_US}`);
      if (limits.memBytes > 0) {
        write(d, 'memory.max', limits.memBytes);
        tryWrite(d, 'memory.swap.max', 0);
      }
      write(d, 'pids.max', limits.pidsMax);
      if (this.cpus) this.setCpus(cg.owner, d, exclusive);
      return;
    }
    const cpu = join(this.bases.cpu!, name);
    if (!before) write(cpu, 'cpu.cfs_period_us', CFS_PERIOD_US);
    if (!before || cpuQuotaUs(before.cpuMillis) !== cpuQuotaUs(limits.cpuMillis)) write(cpu, 'cpu.cfs_quota_us', cpuQuotaUs(limits.cpuMillis));
    const mem = join(this.bases.memory!, name);
    // A new cgroup has no memory limit. memsw (memory + swap, so no swapping past the limit) may never be
    // below memory: raised first, lowered last (0 is no limit: -1 to the kernel).
    const unlimitedAsInf = (bytes: number) => (bytes > 0 ? bytes : Infinity);
    const from = unlimitedAsInf(before?.memBytes ?? 0);
    const to = unlimitedAsInf(limits.memBytes);
    if (to !== from) {
      const value = limits.memBytes > 0 ? limits.memBytes : -1;
      if (to > from) tryWrite(mem, 'memory.memsw.limit_in_bytes', value);
      write(mem, 'memory.limit_in_bytes', value);
      if (to < from) tryWrite(mem, 'memory.memsw.limit_in_bytes', value);
    }
    if (!before) tryWrite(mem, 'memory.swappiness', 0);
    if (!before || before.pidsMax !== limits.pidsMax) write(join(this.bases.pids!, name), 'pids.max', limits.pidsMax);
    if (this.bases.cpuset && bases.includes(this.bases.cpuset)) {
      const cs = join(this.bases.cpuset, name);
      if (!before) write(cs, 'cpuset.mems', readText(this.bases.cpuset, 'cpuset.mems')!.trim());
      if (this.cpus) this.setCpus(cg.owner, cs, exclusive);
    }
    if (!before && this.bases.devices && bases.includes(this.bases.devices)) this.hideGpus(join(this.bases.devices, name), limits.gpuIndices);
  }

  /** Forgets a task's cpuset (its cores go back to the shared ones). */
  released(name: string): void {
    this.sharedDirs.delete(name);
    if (this.cpus?.release(name)) this.reshare();
  }

  private handle(name: string, bases: string[], shared: string[] = []): TaskCgroup {
    const dirs: Partial<Record<V1Controller, string>> & { all: string[] } = { all: bases.map((b) => join(b, name)) };
    for (const c of [...V1_REQUIRED, ...V1_OPTIONAL]) if (this.bases[c] && bases.includes(this.bases[c]!)) dirs[c] = join(this.bases[c]!, name);
    return new TaskCgroup(this, name, dirs, shared);
  }

  private setCpus(name: string, dir: string, exclusive: number[] | undefined): void {
    if (exclusive) {
      write(dir, 'cpuset.cpus', exclusive.join(','));
      this.reshare(); // the other tasks leave these cores
    } else {
      this.sharedDirs.set(name, dir);
      write(dir, 'cpuset.cpus', this.cpus!.shared().join(','));
    }
  }

  private reshare(): void {
    const cpus = this.cpus!.shared().join(',');
    if (this.sharedCpuset) tryWrite(this.sharedCpuset, 'cpuset.cpus', cpus);
    for (const dir of this.sharedDirs.values()) tryWrite(dir, 'cpuset.cpus', cpus);
  }

  /** v1 devices: deny the GPU device nodes of /dev the task was not given. */
  private hideGpus(dir: string, assigned: number[]): void {
    for (const d of this.gpuDevices) if (!assigned.includes(d.index)) write(dir, 'devices.deny', `c ${d.major}:${d.minor} rwm`);
  }
}

/** rmdir, which is how a cgroup goes (its control files with it); a plain folder (a test's fake tree) is removed with its files. */
function removeDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    // A cgroup without child cgroups never answers ENOTEMPTY: this is a plain folder of files.
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || readdirSync(dir).some((e) => statSafe(join(dir, e))?.isDirectory())) throw err;
    rmSync(dir, { recursive: true });
  }
}

/** Makes a cgroup's directories on libuv's thread pool; on failure removes those made, and throws. */
async function makeDirs(cg: TaskCgroup): Promise<void> {
  try {
    await Promise.all(cg.directories.map((dir) => mkdirAsync(dir, { recursive: true })));
  } catch (err) {
    await Promise.all(cg.directories.map((dir) => removeDirAsync(dir).catch(() => undefined)));
    throw err;
  }
}

/** removeDir on libuv's thread pool. */
async function removeDirAsync(dir: string): Promise<void> {
  try {
    await rmdirAsync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || (await readdirAsync(dir, { withFileTypes: true })).some((e) => e.isDirectory())) throw err;
    await rmAsync(dir, { recursive: true });
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function statSafe(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
