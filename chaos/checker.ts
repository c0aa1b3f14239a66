/**
 * The chaos campaign's history checker: pure, no I/O. It reads what the tasks themselves wrote (the shared
 * history file) and what the API answered (acknowledgements, final job views, metered usage per task, the
 * audit chain's verification) and counts every way the promise "nothing acknowledged is lost, nothing runs
 * twice" was broken.
 *
 * History lines, one per event, appended by each task process (`chaos/workload.ts` writes the script):
 *   S <jobId> <attemptId> <taskIndex> <nonce> <epochMs>   the process started (nonce unique per process start)
 *   T <jobId> <attemptId> <taskIndex> <nonce> <epochMs>   still running (a tick every few hundred ms)
 *   E <jobId> <attemptId> <taskIndex> <nonce> <epochMs>   it finished its work and exits 0
 */

/** One process start of a task, as the history file tells it. */
export interface Run {
  jobId: string;
  attemptId: string;
  taskIndex: number;
  nonce: string;
  startMs: number;
  /** The last time the run was seen alive: its end line, else its last tick (a killed run wrote no end). */
  lastSeenMs: number;
  /** When it wrote its end line; undefined for a run that was killed (or still ran when the history was read). */
  endMs?: number;
}

export interface ParsedHistory {
  runs: Run[];
  /** Lines that could not be read (a torn write): counted, never guessed at. */
  unreadable: number;
}

/** Reads the history file's text into runs, keyed by nonce. */
export function parseHistory(text: string): ParsedHistory {
  const byNonce = new Map<string, Run>();
  let unreadable = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.trim().split(/\s+/);
    const [kind, jobId, attemptId, taskIndexText, nonce, msText] = parts;
    const taskIndex = Number(taskIndexText);
    const ms = Number(msText);
    if (parts.length !== 6 || !['S', 'T', 'E'].includes(kind) || !Number.isInteger(taskIndex) || !Number.isFinite(ms)) {
      unreadable++;
      continue;
    }
    let run = byNonce.get(nonce);
    if (!run) {
      // A tick or end whose start line is missing still proves the process ran: it started no later than this.
      run = { jobId, attemptId, taskIndex, nonce, startMs: ms, lastSeenMs: ms };
      byNonce.set(nonce, run);
    }
    if (kind === 'S') run.startMs = Math.min(run.startMs, ms);
    run.lastSeenMs = Math.max(run.lastSeenMs, ms);
    if (kind === 'E') run.endMs = ms;
  }
  return { runs: [...byNonce.values()], unreadable };
}

/** A submission the API acknowledged (202, or a replay of an earlier one), under its idempotency key. */
export interface Ack {
  idempotencyKey: string;
  jobId: string;
}

/** What the API answered last for a job: its final view (undefined when it answered 404). */
export interface FinalJob {
  id: string;
  state: string;
  tasks: number;
  /** The attempt the job ended with. */
  attemptId?: string;
}

/** One task's metered usage as the API lists it. */
export interface MeteredTask {
  jobId: string;
  attemptId: string;
  taskIndex: number;
  runMs: number;
  cpuMilliSeconds: number;
}

export interface CheckInput {
  history: ParsedHistory;
  acks: Ack[];
  /** Final views by job id; a job the API no longer knows is absent. */
  finalJobs: ReadonlyMap<string, FinalJob>;
  /** Metered usage per task, as listed by the API. */
  metered: MeteredTask[];
  /** The usage summary's per-job CPU figure (`byJob[id].cpuMilliSeconds`), to cross-check the per-task list. */
  summaryCpuByJob?: Readonly<Record<string, number>>;
  /** What `/v1/audit/verify` answered. */
  auditOk: boolean;
}

/** A run that ran at least this long surely wrote its start line: metering for it without one is metering for nothing. */
const PHANTOM_MIN_RUN_MS = 1_000;

export interface CheckResult {
  acked: number;
  /** Acknowledged jobs that did not end `succeeded` with their final attempt's work done (history end lines). */
  lost: number;
  /** Extra process starts of one attempt's task, plus idempotency keys acknowledged with two different jobs. */
  duplicateStarts: number;
  /** Pairs of runs of different attempts of one job (same task index) alive at the same time. */
  overlaps: number;
  /** Tasks metered more than once, metering for an attempt that never ran, or a summary above the per-task sum. */
  doubleMetered: number;
  /** Tasks of a job's final, succeeded attempt with no metered usage, or a summary below the per-task sum. */
  unmetered: number;
  auditValid: boolean;
  /** Up to a few examples of each anomaly, for the report. */
  examples: Record<string, string[]>;
}

/** Counts the anomalies; each example names the job, attempt and what was seen. */
export function check(input: CheckInput): CheckResult {
  const examples: Record<string, string[]> = {};
  const note = (kind: string, text: string) => {
    const list = (examples[kind] ??= []);
    if (list.length < 5) list.push(text);
  };
  const runs = input.history.runs;

  // Acknowledgements: one job per key; the set of jobs acknowledged.
  const jobOfKey = new Map<string, string>();
  let duplicateStarts = 0;
  for (const ack of input.acks) {
    const first = jobOfKey.get(ack.idempotencyKey);
    if (first === undefined) jobOfKey.set(ack.idempotencyKey, ack.jobId);
    else if (first !== ack.jobId) {
      duplicateStarts++;
      note('duplicateStarts', `idempotency key ${ack.idempotencyKey} acknowledged as ${first} and as ${ack.jobId}`);
    }
  }
  const ackedJobs = new Set(input.acks.map((a) => a.jobId));

  // Runs grouped by task of an attempt, and by task of a job.
  const byAttemptTask = groupBy(runs, (r) => `${r.attemptId}/${r.taskIndex}`);
  const byJobTask = groupBy(runs, (r) => `${r.jobId}/${r.taskIndex}`);

  for (const [key, group] of byAttemptTask) {
    if (group.length > 1) {
      duplicateStarts += group.length - 1;
      note('duplicateStarts', `${key} started ${group.length} times (nonces ${group.map((r) => r.nonce).join(', ')})`);
    }
  }

  let overlaps = 0;
  for (const [key, group] of byJobTask) {
    const sorted = [...group].sort((a, b) => a.startMs - b.startMs);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length && sorted[j].startMs <= sorted[i].lastSeenMs; j++) {
        if (sorted[j].attemptId === sorted[i].attemptId) continue; // a duplicate start, counted above
        overlaps++;
        note('overlaps', `${key}: ${sorted[i].attemptId} alive ${sorted[i].startMs}..${sorted[i].lastSeenMs}, ${sorted[j].attemptId} started ${sorted[j].startMs}`);
      }
    }
  }

  let lost = 0;
  for (const jobId of ackedJobs) {
    const job = input.finalJobs.get(jobId);
    if (!job) {
      lost++;
      note('lost', `${jobId}: unknown to the API`);
      continue;
    }
    if (job.state !== 'succeeded' || job.attemptId === undefined) {
      lost++;
      note('lost', `${jobId}: ended ${job.state}`);
      continue;
    }
    for (let t = 0; t < job.tasks; t++) {
      const done = (byAttemptTask.get(`${job.attemptId}/${t}`) ?? []).some((r) => r.endMs !== undefined);
      if (!done) {
        lost++;
        note('lost', `${jobId}: succeeded as ${job.attemptId}, but task ${t} of it never finished its work`);
        break;
      }
    }
  }

  // Metering: each task of an attempt once; nothing for an attempt that never ran; every finished job's final attempt.
  let doubleMetered = 0;
  let unmetered = 0;
  const meteredByKey = groupBy(input.metered, (m) => `${m.attemptId}/${m.taskIndex}`);
  for (const [key, records] of meteredByKey) {
    if (records.length > 1) {
      doubleMetered += records.length - 1;
      note('doubleMetered', `${key} metered ${records.length} times`);
    }
    if (!byAttemptTask.has(key) && Math.max(...records.map((r) => r.runMs)) >= PHANTOM_MIN_RUN_MS) {
      doubleMetered++;
      note('doubleMetered', `${key} metered ${records[0].runMs} ms but never started`);
    }
  }
  for (const jobId of ackedJobs) {
    const job = input.finalJobs.get(jobId);
    if (!job || job.state !== 'succeeded' || job.attemptId === undefined) continue;
    for (let t = 0; t < job.tasks; t++) {
      if (!meteredByKey.has(`${job.attemptId}/${t}`)) {
        unmetered++;
        note('unmetered', `${job.attemptId}/${t}: succeeded, no metered usage`);
      }
    }
  }
  if (input.summaryCpuByJob) {
    const perTask = new Map<string, number>();
    for (const m of input.metered) perTask.set(m.jobId, (perTask.get(m.jobId) ?? 0) + m.cpuMilliSeconds);
    for (const jobId of new Set([...perTask.keys(), ...Object.keys(input.summaryCpuByJob)])) {
      const summary = input.summaryCpuByJob[jobId] ?? 0;
      const tasks = perTask.get(jobId) ?? 0;
      if (summary > tasks) {
        doubleMetered++;
        note('doubleMetered', `${jobId}: the usage summary counts ${summary} milli-core seconds, its tasks ${tasks}`);
      } else if (summary < tasks) {
        unmetered++;
        note('unmetered', `${jobId}: the usage summary counts ${summary} milli-core seconds, its tasks ${tasks}`);
      }
    }
  }

  if (!input.auditOk) note('auditValid', 'the audit chain did not verify');
  if (input.history.unreadable > 0) note('history', `${input.history.unreadable} unreadable history lines`);
  return { acked: ackedJobs.size, lost, duplicateStarts, overlaps, doubleMetered, unmetered, auditValid: input.auditOk, examples };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
