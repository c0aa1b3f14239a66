import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { UsageSegment } from '../src/protocol';
import type { ReportedStatus } from './runners/types';

/** A task the journal knows was started. */
export interface JournalTask {
  key: string;
  jobId: string;
  attemptId: string;
  nodeId: string;
  taskIndex: number;
  pid?: number;
}

type Line =
  | ({ t: 'start' } & JournalTask)
  | { t: 'exit'; key: string; exit: ReportedStatus; usage?: UsageSegment[] }
  | { t: 'reported'; key: string }
  | { t: 'seen'; key: string };

/** Keys kept after compaction, so a late duplicate assignment is still recognised. */
const KEEP_SEEN = 20_000;

export interface JournalOptions {
  /** Most recent task keys remembered (in memory and in the compacted file); default 20,000. */
  keepSeen?: number;
  /** Compact after this many appended lines; default four times keepSeen. */
  compactEvery?: number;
}

/**
 * The agent's memory across restarts: an append-only file with a line per task start, exit and reported
 * exit. It makes assignments idempotent (a task key seen before is never started again) and tells a
 * restarted agent what it had under way: tasks started but never exited are reported lost (their process
 * groups are killed), exits not yet reported are reported again. It stays bounded on a node that runs for
 * years: after every `compactEvery` lines it is rewritten with the tasks under way and the last `keepSeen` keys,
 * and the keys in memory are cut to the same.
 */
export class Journal {
  private readonly seen = new Set<string>();
  private readonly tasks = new Map<string, JournalTask>();
  private readonly exits = new Map<string, ReportedStatus>();
  /** What each exited task used, reported with its exit (again after a restart, so it is metered once all the same). */
  private readonly usages = new Map<string, UsageSegment[]>();
  private fd: number;
  /** Lines not written yet: only starts must reach the file before the agent goes on (see append). */
  private buffered = '';
  private flushQueued = false;
  private appended = 0;
  private readonly keepSeen: number;
  private readonly compactEvery: number;

  constructor(
    private readonly path: string,
    options: JournalOptions = {},
  ) {
    this.keepSeen = options.keepSeen ?? KEEP_SEEN;
    // Compacted while the agent runs, or the file would grow with every task.
    this.compactEvery = options.compactEvery ?? 4 * this.keepSeen;
    mkdirSync(dirname(path), { recursive: true });
    let torn = false;
    if (existsSync(path)) {
      const content = readFileSync(path, 'utf8');
      // A crash mid-write leaves a last line without its newline: end it, or the next line would be glued to it.
      torn = content.length > 0 && !content.endsWith('\n');
      for (const text of content.split('\n')) {
        if (!text) continue;
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          continue; // a torn last line after a crash
        }
        this.seen.add(line.key);
        if (line.t === 'start') this.tasks.set(line.key, line);
        else if (line.t === 'exit') {
          this.exits.set(line.key, line.exit);
          if (line.usage) this.usages.set(line.key, line.usage);
        }
        else if (line.t === 'reported') {
          this.tasks.delete(line.key);
          this.exits.delete(line.key);
          this.usages.delete(line.key);
        }
      }
    }
    this.fd = openSync(path, 'a');
    if (torn) writeSync(this.fd, '\n');
  }

  /** Tasks started before a restart that never exited. */
  unfinished(): JournalTask[] {
    return [...this.tasks.values()].filter((t) => !this.exits.has(t.key));
  }

  /** Tasks that exited but whose exit was not confirmed stored. */
  unreported(): { task: JournalTask; exit: ReportedStatus; usage?: UsageSegment[] }[] {
    return [...this.tasks.values()].filter((t) => this.exits.has(t.key)).map((task) => ({ task, exit: this.exits.get(task.key)!, usage: this.usages.get(task.key) }));
  }

  hasSeen(key: string): boolean {
    return this.seen.has(key);
  }

  /** Records a start before the process is spawned, so a crash right after cannot lead to a second start. */
  started(task: JournalTask): void {
    this.tasks.set(task.key, task);
    this.append({ t: 'start', ...task }, true);
  }

  /** Records the pid of a started task (to clean up after a crash). */
  setPid(key: string, pid: number): void {
    const task = this.tasks.get(key);
    if (!task) return;
    task.pid = pid;
    this.append({ t: 'start', ...task }, true);
  }

  exited(key: string, exit: ReportedStatus, usage?: UsageSegment[]): void {
    this.exits.set(key, exit);
    if (usage) this.usages.set(key, usage);
    this.append({ t: 'exit', key, exit, usage });
  }

  /** The exit status is stored in the job log: nothing more to do for this task. */
  reported(key: string): void {
    this.tasks.delete(key);
    this.exits.delete(key);
    this.usages.delete(key);
    this.append({ t: 'reported', key });
  }

  /** Records that a task will never run (cancelled before it started). */
  markSeen(key: string): void {
    this.append({ t: 'seen', key });
  }

  /** Rewrites the file with what still matters: tasks under way and the most recent keys seen (also in memory). */
  compact(): void {
    this.flush();
    this.appended = 0;
    const recent = [...this.seen].slice(-this.keepSeen);
    this.seen.clear();
    for (const key of recent) this.seen.add(key);
    for (const key of this.tasks.keys()) this.seen.add(key);
    const lines: string[] = [];
    for (const key of recent) if (!this.tasks.has(key)) lines.push(JSON.stringify({ t: 'seen', key }));
    for (const task of this.tasks.values()) {
      lines.push(JSON.stringify({ t: 'start', ...task }));
      const exit = this.exits.get(task.key);
      if (exit) lines.push(JSON.stringify({ t: 'exit', key: task.key, exit, usage: this.usages.get(task.key) }));
    }
    closeSync(this.fd);
    writeFileSync(`${this.path}.tmp`, lines.length > 0 ? `${lines.join('\n')}\n` : '');
    renameSync(`${this.path}.tmp`, this.path);
    this.fd = openSync(this.path, 'a');
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  /**
   * A start is written at once, before the process is spawned: after a crash it is what prevents a second
   * start. Exits and reports are written at the end of the tick: losing them in a crash only means an
   * exit is reported again (de-duplicated by its message id) or a task is reported lost.
   */
  private append(line: Line, now = false): void {
    this.seen.add(line.key);
    this.buffered += `${JSON.stringify(line)}\n`;
    if (++this.appended >= this.compactEvery) this.compact();
    else if (now) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.buffered === '') return;
    const text = this.buffered;
    this.buffered = '';
    writeSync(this.fd, text);
  }
}
