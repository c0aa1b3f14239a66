import { isActiveInWindow, mergeJobPages, mergeUsages, type Archive, type ArchivedJob, type TimeWindow } from '../src/archive';
import type { JobsServed, UsageFilter } from '../src/billing';
import { POOLS, TERMINAL_JOB_STATES, type JobState, type JobView, type Pool, type TaskUsage } from '../src/protocol';
import type { JobStateView } from './job-store';
import type { JobRecord } from './state/job-table';
import { jobView } from './state/views';

/** Which jobs to list (`GET /v1/jobs`): each field narrows; the window selects as `sacct` does (`isActiveInWindow`). */
export interface JobListFilter extends TimeWindow {
  tenant?: string;
  state?: JobState;
  pool?: Pool;
  limit: number;
  /** The last id of the previous page (or any id: the page starts after it). */
  cursor?: string;
}

/** A job found by id: still in memory, or only in the archive. */
export type FoundJob = { where: 'memory'; record: JobRecord } | { where: 'archive'; archived: ArchivedJob };

/** What the history reads need: memory, and the archive when there is one. */
export interface HistoryDeps {
  readonly store: JobStateView;
  readonly archive: Archive | undefined;
}

/**
 * What happened, read the same whether it is still in memory or only in the accounting archive: jobs by id
 * and in pages, metered usage and jobs served in a period. Memory is always read first, then the archive:
 * a job or a task's usage leaves memory only once it is archived, so whatever leaves memory between the
 * two reads is found in the archive, and what is in both is counted once (memory's view of a job wins).
 * Without an archive these are memory's answers alone. A read the archive must answer fails with
 * QY_ERR_ARCHIVE_UNAVAILABLE (503) while PostgreSQL is down; reads memory can answer alone do not ask it.
 */
export class HistoryReads {
  constructor(private readonly s: HistoryDeps) {}

  /** A job by id from memory, else from the archive; undefined when neither holds it. Tenant rules are the caller's. */
  async job(id: string): Promise<FoundJob | undefined> {
    const record = this.s.store.table.get(id);
    if (record) return { where: 'memory', record };
    const archived = await this.s.archive?.reader.job(id);
    return archived && { where: 'archive', archived };
  }

  /** The job a tenant submitted with an Idempotency-Key that has left memory (memory's own index is the caller's first look). */
  async archivedByIdempotencyKey(tenant: string, key: string): Promise<ArchivedJob | undefined> {
    return this.s.archive?.reader.jobByIdempotencyKey(tenant, key);
  }

  /** A page of jobs in submission order (ids sort so), from memory and the archive. */
  async jobs(filter: JobListFilter): Promise<{ items: JobView[]; nextCursor?: string }> {
    const memory = this.memoryPage(filter);
    // The archive holds ended jobs only: a list of pending or running jobs is memory's alone.
    if (!this.s.archive || (filter.state !== undefined && !TERMINAL_JOB_STATES.has(filter.state))) return memory;
    const archived = await this.s.archive.reader.listJobs(filter);
    return mergeJobPages([archived, memory], filter.limit);
  }

  /** Metered task usages with segments a filter selects, from memory and the archive, each task once. */
  async usages(filter: UsageFilter): Promise<TaskUsage[]> {
    const live = this.s.store.usage.all();
    if (!this.s.archive) return live;
    return mergeUsages(await this.s.archive.reader.usages(filter), live);
  }

  /** Jobs that ended in [fromMs, toMs), by pool and outcome (the disclosure's jobs served), each job once. */
  async jobsServed(fromMs: number, toMs: number): Promise<Partial<Record<Pool, JobsServed>>> {
    const counts = new Map<string, Map<string, number>>();
    const add = (pool: string, state: string, n: number) => {
      const states = counts.get(pool) ?? counts.set(pool, new Map()).get(pool)!;
      states.set(state, (states.get(state) ?? 0) + n);
    };
    const counted: string[] = [];
    for (const job of this.s.store.table.jobs.values()) {
      if (job.finishedAtMs === undefined || job.finishedAtMs < fromMs || job.finishedAtMs >= toMs) continue;
      add(job.spec.pool, job.state, 1);
      counted.push(job.id);
    }
    if (this.s.archive) {
      // The jobs memory counted are left out of the archive's count: a job in both counts once.
      const archived = await this.s.archive.reader.jobsServed(fromMs, toMs, counted);
      for (const [pool, states] of Object.entries(archived)) for (const [state, n] of Object.entries(states ?? {})) add(pool, state, n);
    }
    // Pools in their order, outcomes by name: the same document whichever place counted what.
    const served: Partial<Record<Pool, JobsServed>> = {};
    for (const pool of POOLS) {
      const states = counts.get(pool);
      if (states) served[pool] = Object.fromEntries([...states].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return served;
  }

  /** Memory's page: the jobs after the cursor that the filter selects, `limit` of them by id, and whether there are more. */
  private memoryPage(f: JobListFilter): { items: JobView[]; nextCursor?: string } {
    const picked = smallestIds(this.s.store.table.jobs.values(), f.limit + 1, (job) => {
      if (f.cursor !== undefined && job.id <= f.cursor) return false;
      if (f.tenant !== undefined && job.tenant !== f.tenant) return false;
      if (f.state !== undefined && job.state !== f.state) return false;
      if (f.pool !== undefined && job.spec.pool !== f.pool) return false;
      return isActiveInWindow(job, f);
    });
    const items = picked.slice(0, f.limit).map((job) => jobView(job, this.s.store.pending));
    return { items, nextCursor: picked.length > f.limit ? items[items.length - 1].id : undefined };
  }
}

/**
 * The `k` jobs of smallest id that `accept` takes, sorted by id. Memory holds jobs in about submission
 * order, so once `k` are kept each later job costs one comparison; any order still gives the right page.
 */
function smallestIds(jobs: Iterable<JobRecord>, k: number, accept: (job: JobRecord) => boolean): JobRecord[] {
  const kept: JobRecord[] = [];
  for (const job of jobs) {
    if (kept.length === k && job.id >= kept[k - 1].id) continue;
    if (!accept(job)) continue;
    let lo = 0;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].id < job.id) lo = mid + 1;
      else hi = mid;
    }
    kept.splice(lo, 0, job);
    if (kept.length > k) kept.pop();
  }
  return kept;
}
