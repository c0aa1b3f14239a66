import { appendFileSync, mkdirSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

const MiB = 1024 ** 2;

/** Logs of ended tasks an agent keeps by default (QY_TASK_LOGS_KEEP). */
export const DEFAULT_TASK_LOGS_KEEP = 10_000;
/** Bytes of all ended tasks' logs an agent keeps by default (QY_TASK_LOGS_MAX_BYTES): 10 GiB. */
export const DEFAULT_TASK_LOGS_MAX_BYTES = 10 * 1024 * MiB;
/** Bytes one running task's log may reach by default before its earlier output is dropped (QY_TASK_LOG_MAX_BYTES): 256 MiB. */
export const DEFAULT_TASK_LOG_MAX_BYTES = 256 * MiB;

/** Where a task's log is, in an agent's log folder. */
export function taskLogPath(dir: string, attemptId: string, taskIndex: number): string {
  return join(dir, `${attemptId}-${taskIndex}.log`);
}

export interface TaskLogLimits {
  /** Logs of ended tasks kept (0: a log goes when its task ends). */
  keep?: number;
  /** Bytes of all ended tasks' logs kept. */
  maxBytes?: number;
  /** Bytes a running task's log may reach before its earlier output is dropped. */
  maxTaskBytes?: number;
  /**
   * Reuse the oldest ended log's file for a new task's log. Only where every process of an ended task is
   * known to be gone (the agent kills what is left in its cgroup): a process that outlived its task would
   * otherwise write into another task's log through the file it still holds.
   */
  reuseFiles?: boolean;
}

/**
 * The task logs of an agent, one file per task in one folder, bounded so that a node running for years (or
 * a task printing without end) cannot fill its disk: at most `keep` logs of ended tasks and `maxBytes` of
 * them are kept, the oldest going first, and a running task's log past `maxTaskBytes` loses its earlier
 * output (`capRunning`). Where tasks run in cgroups (`reuseFiles`), a new task's log reuses the oldest ended
 * one's file (renamed and emptied) rather than creating a file while removing another: the file system
 * allocates and frees no inode per task. A log
 * being read is neither reused nor removed until the read is done, so a read never returns another task's
 * output.
 */
export class TaskLogs {
  /** Logs of ended tasks with their sizes, oldest first, from `head`. */
  private endedLogs: { path: string; bytes: number }[] = [];
  private head = 0;
  private endedBytes = 0;
  /** Reads under way, by path. */
  private readonly reading = new Map<string, number>();
  private readonly keep: number;
  private readonly maxBytes: number;
  readonly maxTaskBytes: number;
  private readonly reuseFiles: boolean;

  constructor(
    readonly dir: string,
    limits: TaskLogLimits = {},
  ) {
    this.keep = limits.keep ?? DEFAULT_TASK_LOGS_KEEP;
    this.maxBytes = limits.maxBytes ?? DEFAULT_TASK_LOGS_MAX_BYTES;
    this.maxTaskBytes = limits.maxTaskBytes ?? DEFAULT_TASK_LOG_MAX_BYTES;
    this.reuseFiles = limits.reuseFiles ?? false;
  }

  /** Logs of ended tasks kept now. */
  get endedCount(): number {
    return this.endedLogs.length - this.head;
  }

  /** Bytes of the logs of ended tasks kept now (as they were when their tasks ended). */
  get endedSize(): number {
    return this.endedBytes;
  }

  /**
   * Takes the logs already in the folder (an earlier run's: their tasks have ended, or were killed at
   * recovery) as ended, oldest first by modification time, and removes those past the limits. Returns how
   * many it removed.
   */
  open(): number {
    mkdirSync(this.dir, { recursive: true });
    const found: { path: string; bytes: number; mtimeMs: number }[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.log')) continue;
      const path = join(this.dir, name);
      try {
        const st = statSync(path);
        found.push({ path, bytes: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // gone meanwhile
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
    this.endedLogs = found.map(({ path, bytes }) => ({ path, bytes }));
    this.head = 0;
    this.endedBytes = found.reduce((sum, f) => sum + f.bytes, 0);
    return this.trim();
  }

  /**
   * The path of a new task's log. With `reuseFiles` and `keep` ended logs already kept, the oldest one not being
   * read is moved there and emptied; otherwise the file is made when the task starts (and the oldest removed
   * when this task ends).
   */
  pathFor(attemptId: string, taskIndex: number): string {
    const path = taskLogPath(this.dir, attemptId, taskIndex);
    if (this.reuseFiles && this.endedCount >= this.keep && this.keep > 0) {
      const oldest = this.takeOldest();
      if (oldest !== undefined && oldest !== path) {
        try {
          renameSync(oldest, path);
          truncateSync(path, 0);
        } catch {
          // Gone (a task that never started leaves no file), or not movable: the task's log is made anew.
        }
      }
    }
    return path;
  }

  /** A task's log is complete (its task ended): kept, and the oldest past the limits removed. */
  taskEnded(path: string): void {
    let bytes = 0;
    try {
      bytes = statSync(path).size;
    } catch {
      // never written (the task did not start)
    }
    this.endedLogs.push({ path, bytes });
    this.endedBytes += bytes;
    this.trim();
  }

  /**
   * Drops the earlier output of a running task's log grown past `maxTaskBytes`: emptied, with a line saying so
   * (the task appends, so what it writes next follows that line). True when it did.
   */
  capRunning(path: string): boolean {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return false; // not written yet
    }
    if (size <= this.maxTaskBytes || this.reading.has(path)) return false;
    truncateSync(path, 0);
    appendFileSync(path, `[qy-agent] this task's output passed ${this.maxTaskBytes} bytes (QY_TASK_LOG_MAX_BYTES): ${size} bytes before this line were dropped\n`);
    return true;
  }

  /** Runs a read of a log, keeping the file from being reused or removed until it is done. */
  async read<T>(path: string, read: () => Promise<T>): Promise<T> {
    this.reading.set(path, (this.reading.get(path) ?? 0) + 1);
    try {
      return await read();
    } finally {
      const n = this.reading.get(path)! - 1;
      if (n === 0) this.reading.delete(path);
      else this.reading.set(path, n);
    }
  }

  /** The oldest ended log not being read, taken off the list (undefined when every one is being read). */
  private takeOldest(): string | undefined {
    for (let i = this.head; i < this.endedLogs.length; i++) {
      const { path, bytes } = this.endedLogs[i];
      if (this.reading.has(path)) continue;
      if (i === this.head) this.head++;
      else this.endedLogs.splice(i, 1);
      this.endedBytes -= bytes;
      this.compact();
      return path;
    }
    return undefined;
  }

  /** Removes the oldest ended logs past the limits (those being read stay until a later call). */
  private trim(): number {
    let removed = 0;
    while (this.endedCount > this.keep || (this.endedBytes > this.maxBytes && this.endedCount > 0)) {
      const path = this.takeOldest();
      if (path === undefined) break;
      try {
        unlinkSync(path);
        removed++;
      } catch {
        // already gone
      }
    }
    return removed;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.endedLogs.length) {
      this.endedLogs = this.endedLogs.slice(this.head);
      this.head = 0;
    }
  }
}
