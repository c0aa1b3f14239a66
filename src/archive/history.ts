import { taskKey, type JobView, type TaskUsage } from '../protocol';

/**
 * Pure helpers shared by the archive and the scheduler's memory, so a query answered from both gives one
 * answer: which jobs a time window selects, one `sacct`-style line per job, and the union of records
 * held in both places counted once.
 */

/** A time window, epoch ms: `since` inclusive, `until` exclusive; either may be open. */
export interface TimeWindow {
  sinceMs?: number;
  untilMs?: number;
}

/**
 * Whether a job was in the system during the window, as `sacct -S … -E …` selects: submitted before its
 * end, and not finished before its start. A job that has not finished is still in the system.
 */
export function isActiveInWindow(job: { submittedAtMs: number; finishedAtMs?: number }, window: TimeWindow): boolean {
  if (window.untilMs !== undefined && job.submittedAtMs >= window.untilMs) return false;
  if (window.sinceMs !== undefined && job.finishedAtMs !== undefined && job.finishedAtMs < window.sinceMs) return false;
  return true;
}

// The history line is the protocol's (qy history renders the same rows from the API's job views).
export { HISTORY_COLUMNS, historyRow, type HistoryRow } from '../protocol';

/**
 * Task usages from the archive and from memory as one list, each task once: a task metered in both
 * places (archived, not yet dropped from memory) counts the archive's record, which is the first one.
 */
export function mergeUsages(archived: readonly TaskUsage[], live: readonly TaskUsage[]): TaskUsage[] {
  const seen = new Set(archived.map(taskKey));
  return [...archived, ...live.filter((u) => !seen.has(taskKey(u)))];
}

/**
 * Pages of jobs in submission order (ids sort so) from the archive and from memory as one page: each id
 * once, the first `limit`, and the cursor of the next page (the last id) when there may be more.
 */
export function mergeJobPages(pages: readonly { items: readonly JobView[]; nextCursor?: string }[], limit: number): { items: JobView[]; nextCursor?: string } {
  const byId = new Map<string, JobView>();
  // Memory's view wins over the archive's for a job in both: it is the same job, and memory is never older.
  for (const page of pages) for (const v of page.items) byId.set(v.id, v);
  const ids = [...byId.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const items = ids.slice(0, limit).map((id) => byId.get(id)!);
  const more = ids.length > limit || pages.some((p) => p.nextCursor !== undefined);
  return { items, nextCursor: more && items.length > 0 ? items[items.length - 1].id : undefined };
}
