import { HISTORY_COLUMNS, csvRows, type HistoryRow } from '../src/protocol';
import { renderTable } from './table';

/** `qy history` output formats, after `sacct -o`/`--parsable`. */
export const HISTORY_FORMATS = ['table', 'json', 'csv'] as const;
export type HistoryFormat = (typeof HISTORY_FORMATS)[number];

const AGE_UNITS_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A time as `qy history` takes it: `now`; an age such as `30m`, `12h`, `7d`, `2w`; a date `YYYY-MM-DD`
 * (midnight) or date-time `YYYY-MM-DDTHH:MM[:SS]` in this machine's local time, as `sacct` reads them;
 * or ISO 8601 with `Z` or an offset. Returns epoch ms; throws with what it accepts.
 */
export function parseTimeArg(text: string, nowMs: number): number {
  if (text === 'now') return nowMs;
  const age = /^(\d+)([smhdw])$/.exec(text);
  if (age) return nowMs - Number(age[1]) * AGE_UNITS_MS[age[2]];
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (date) return new Date(Number(date[1]), Number(date[2]) - 1, Number(date[3])).getTime();
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new RangeError(`${JSON.stringify(text)} is not a time: give now, an age (30m, 12h, 7d, 2w), a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM]`);
}

/** Local midnight today: what `qy history` starts from by default, as `sacct` does. */
export function startOfToday(nowMs: number): number {
  const d = new Date(nowMs);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Seconds as sacct shows elapsed time: `[D-]HH:MM:SS`. */
export function formatElapsed(seconds: number | null): string {
  if (seconds === null) return '';
  const days = Math.floor(seconds / 86_400);
  const hms = [Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return days > 0 ? `${days}-${hms}` : hms;
}

/** A time for the table: ISO without milliseconds, as sacct's `2026-11-02T08:00:00`. */
const shortTime = (iso: string | null) => (iso === null ? '' : iso.replace(/\.\d{3}Z$/, 'Z'));

/** History lines in a format: an aligned table, a JSON document `{ items }`, or CSV with a header (RFC 4180). */
export function renderHistory(rows: readonly HistoryRow[], format: HistoryFormat): string {
  if (format === 'json') return `${JSON.stringify({ items: rows }, null, 2)}\n`;
  if (format === 'csv') return csvRows([HISTORY_COLUMNS, ...rows.map((r) => HISTORY_COLUMNS.map((c) => r[c]))]);
  const table = renderTable(
    ['JOBID', 'NAME', 'TENANT', 'POOL', 'STATE', 'SUBMIT', 'START', 'END', 'ELAPSED', 'ATTEMPTS', 'EXITCODE', 'NODELIST'],
    rows.map((r) => [r.id, r.name ?? '', r.tenant, r.pool, r.state, shortTime(r.submittedAt), shortTime(r.startedAt), shortTime(r.finishedAt), formatElapsed(r.elapsedSeconds), r.attempts, r.signal ?? (r.exitCode === null ? '' : r.exitCode), r.nodeList ?? '']),
  );
  return `${table}\n`;
}
