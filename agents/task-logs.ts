import { mkdirSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Logs of ended tasks an agent keeps by default (QY_TASK_LOGS_KEEP). */
export const DEFAULT_TASK_LOGS_KEEP = 10_000;

/** Where a task's log is, in an agent's log folder. */
export function taskLogPath(dir: string, attemptId: string, taskIndex: number): string {
  return join(dir, `${attemptId}-${taskIndex}.log`);
}

/**
 * The task logs of an agent, one file per task in one folder, bounded: at most `keep` logs of ended tasks
 * are kept, the oldest going first (a node running short tasks for years would otherwise hold millions of
 * files). A new task's log reuses the oldest ended one's file (renamed and emptied) rather than creating a
 * file while removing another: the file system allocates and frees no inode per task. A log being read is
 * neither reused nor removed until the read is done, so a read never returns another task's output.
 */
export class TaskLogs {
  /** Logs of ended tasks, oldest first, from `head`. */
  private endedLogs: string[] = [];
  private head = 0;
  /** Reads under way, by path. */
  private readonly reading = new Map<string, number>();

  constructor(
    readonly dir: string,
    private readonly keep: number = DEFAULT_TASK_LOGS_KEEP,
  ) {}

  /** Logs of ended tasks kept now. */
  get endedCount(): number {
    return this.endedLogs.length - this.head;
  }

  /**
   * Takes the logs already in the folder (an earlier run's: their tasks have ended, or were killed at
   * recovery) as ended, oldest first by modification time, and removes those past `keep`. Returns how many
   * it removed.
   */
  open(): number {
    mkdirSync(this.dir, { recursive: true });
    const found: { path: string; mtimeMs: number }[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.log')) continue;
      const path = join(this.dir, name);
      try {
        found.push({ path, mtimeMs: statSync(path).mtimeMs });
      } catch {
        // gone meanwhile
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
    this.endedLogs = found.map((f) => f.path);
    this.head = 0;
    return this.trim();
  }

  /**
   * The path of a new task's log. With `keep` ended logs already kept, the oldest one not being
   * read is moved there and emptied; otherwise the file is made when the task starts.
   */
  pathFor(attemptId: string, taskIndex: number): string {
    const path = taskLogPath(this.dir, attemptId, taskIndex);
    if (this.endedCount >= this.keep && this.keep > 0) {
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

  /** A task's log is complete (its task ended): kept, and the oldest past `keep` removed. */
  taskEnded(path: string): void {
    this.endedLogs.push(path);
    this.trim();
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
      const path = this.endedLogs[i];
      if (this.reading.has(path)) continue;
      if (i === this.head) this.head++;
      else this.endedLogs.splice(i, 1);
      this.compact();
      return path;
    }
    return undefined;
  }

  /** Removes the oldest ended logs past `keep` (those being read stay until a later call). */
  private trim(): number {
    let removed = 0;
    while (this.endedCount > this.keep) {
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
