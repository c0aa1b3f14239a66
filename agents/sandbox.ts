import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { DataClass, Enforcement } from '../src/protocol';

/**
 * Isolation of sandbox tasks and of restricted data, with bubblewrap (`bwrap`, Debian package
 * `bubblewrap`): private mount, PID, IPC and UTS namespaces, no network unless the data class allows it,
 * the system directories read-only, the task's private home as the only writable place (also its /tmp),
 * and an unprivileged uid. An agent running as root drops to that uid with `setpriv` before bwrap, so the
 * task is that uid outside its namespaces too (bwrap's own --uid would map it to root outside).
 */

/** Data classes whose tasks may reach the network from the sandbox. */
export const NETWORK_ALLOWED: Record<DataClass, boolean> = { public: true, internal: true, sensitive: false, restricted: false };

/** Directories bound read-only into the sandbox (those that exist). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

export interface Isolation {
  bwrap: string;
  /** setpriv, when the agent is root and drops the task to `uid`/`gid`. */
  setpriv?: string;
  uid: number;
  gid: number;
}

/** Whether a task must run isolated: it asked for the sandbox, or its data is restricted. */
export function needsIsolation(sandbox: boolean, dataClass: DataClass): boolean {
  return sandbox || dataClass === 'restricted';
}

/** The full path of a command found on `path` (or given with a slash), or undefined. */
export function resolveCommand(command: string, path: string | undefined, cwd = process.cwd()): string | undefined {
  const candidates = command.includes('/') ? [isAbsolute(command) ? command : join(cwd, command)] : (path ?? '').split(delimiter).filter(Boolean).map((d) => join(d, command));
  for (const file of candidates) {
    // Most directories of a long PATH do not have it: a stat that does not throw skips them without
    // building an exception each (a dozen per task with npm's PATH); access() then checks the x bit.
    if (!statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not executable for us: next
    }
  }
  return undefined;
}

/** How long a command found on the search path is taken from {@link CommandCache} (re-checked with one stat). */
const COMMAND_CACHE_MS = 10_000;
/** Commands a {@link CommandCache} holds at most (it starts over when full). */
const COMMAND_CACHE_ENTRIES = 256;

/**
 * resolveCommand for every task start, remembering where a command was found. Resolving walks the search
 * path with a stat per directory until the command turns up (a dozen per task with npm's PATH); a cached
 * answer costs one stat, which checks that the file is still there. An answer is kept for `ttlMs`, so a
 * command installed meanwhile in an earlier directory of the path is found after that; one not found is
 * not remembered (installing it takes effect at once).
 */
export class CommandCache {
  private readonly found = new Map<string, { file: string; atMs: number }>();

  constructor(
    private readonly ttlMs = COMMAND_CACHE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  resolve(command: string, path: string | undefined, cwd = process.cwd()): string | undefined {
    const key = `${command}\0${command.includes('/') && !isAbsolute(command) ? cwd : path ?? ''}`;
    const nowMs = this.now();
    const hit = this.found.get(key);
    if (hit && nowMs - hit.atMs < this.ttlMs && statSync(hit.file, { throwIfNoEntry: false })?.isFile()) return hit.file;
    const file = resolveCommand(command, path, cwd);
    if (file === undefined) this.found.delete(key);
    else {
      if (this.found.size >= COMMAND_CACHE_ENTRIES && !this.found.has(key)) this.found.clear();
      this.found.set(key, { file, atMs: nowMs });
    }
    return file;
  }
}

/**
 * Finds bwrap (and setpriv when root) and checks that a namespace can really be created here, by running
 * `true` in one. Says why not otherwise: sandbox and restricted tasks then fail instead of running unisolated.
 */
export function detectIsolation(options: { uid?: number; gid?: number; path?: string } = {}): { isolation?: Isolation; enforcement: Pick<Enforcement, 'isolation' | 'isolationReason'> } {
  const path = options.path ?? process.env.PATH;
  const bwrap = resolveCommand('bwrap', path);
  if (!bwrap) return { enforcement: { isolation: 'none', isolationReason: 'bwrap not found (install the bubblewrap package)' } };
  const root = process.getuid?.() === 0;
  const setpriv = root ? resolveCommand('setpriv', path) : undefined;
  if (root && !setpriv) return { enforcement: { isolation: 'none', isolationReason: 'setpriv not found (util-linux): cannot drop to an unprivileged uid' } };
  const isolation: Isolation = { bwrap, setpriv, uid: root ? (options.uid ?? 65534) : process.getuid!(), gid: root ? (options.gid ?? 65534) : process.getgid!() };
  const truePath = resolveCommand('true', path) ?? '/bin/true';
  const probe = isolatedArgv(isolation, { home: undefined, network: false, gpuIndices: [] }, [truePath]);
  const r = spawnSync(probe[0], probe.slice(1), { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return { enforcement: { isolation: 'none', isolationReason: `bwrap cannot create namespaces here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().slice(0, 300)}` } };
  return { isolation, enforcement: { isolation: 'bwrap', ...(root ? {} : { isolationReason: `the agent is not root: tasks run as its own uid ${isolation.uid}` }) } };
}

/**
 * The command line that runs `command` isolated: [setpriv …] bwrap … -- command. `home` (the task's private
 * home, owned by the task's uid) is bound read-write at its own path, and its tmp folder at /tmp.
 */
export function isolatedArgv(iso: Isolation, task: { home: string | undefined; network: boolean; gpuIndices: number[] }, command: string[]): string[] {
  const argv: string[] = [];
  if (iso.setpriv) argv.push(iso.setpriv, `--reuid=${iso.uid}`, `--regid=${iso.gid}`, '--clear-groups', '--inh-caps=-all', '--');
  argv.push(iso.bwrap, '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try');
  if (!task.network) argv.push('--unshare-net');
  argv.push('--die-with-parent', '--new-session', '--hostname', 'qy-task');
  for (const dir of SYSTEM_DIRS) argv.push('--ro-bind-try', dir, dir);
  argv.push('--proc', '/proc', '--dev', '/dev');
  // Only the task's own GPUs (and the drivers' control devices) are visible.
  for (const i of task.gpuIndices) argv.push('--dev-bind-try', `/dev/nvidia${i}`, `/dev/nvidia${i}`, '--dev-bind-try', `/dev/davinci${i}`, `/dev/davinci${i}`);
  if (task.gpuIndices.length > 0) for (const d of ['/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/davinci_manager', '/dev/devmm_svm', '/dev/hisi_hdc']) argv.push('--dev-bind-try', d, d);
  // /tmp first: the home's own mount point is then made inside it (an empty folder in home/tmp).
  if (task.home) argv.push('--bind', join(task.home, 'tmp'), '/tmp', '--bind', task.home, task.home, '--chdir', task.home);
  // The sandbox's own root (a tmpfs holding the mount points) is read-only too.
  argv.push('--remount-ro', '/', '--', ...command);
  return argv;
}
