import { createGunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { z } from 'zod';
import { POOLS, TERMINAL_JOB_STATES, type Pool } from '../../src/protocol';
import type { Hold } from '../../src/core';
import { pacer } from '../../src/time';
import type { SerializedJob } from './job-table';
import type { UsageLedger } from '../metering';
import { workMixStateSchema, type WorkMixState } from '../../src/green';

/**
 * Bumped when the format changes. 2: gzipped lines (a header, then one line per job, usage record, deferral
 * and position), read and checked line by line with turns for the event loop between slices, so a rebuild
 * from a snapshot of a hundred thousand jobs never holds the loop for seconds (it once held it long enough
 * to lose the lease it had just won, again and again); since 2026-12, its header may also hold the green
 * planner's work mix (`workMix`, optional: older snapshots are read without it, older schedulers ignore it).
 * 1: one JSON document, still read.
 */
export const SNAPSHOT_VERSION = 2;

/**
 * The scheduler's state as of a position of the job log: every job in memory (live, and ended ones not yet
 * let go), metered usage, the term fence, and the green deferrals promised. A rebuild loads it and replays
 * only the log after `seq`. Jobs' placements and the queue are rebuilt from the jobs.
 */
export interface StateSnapshot {
  v: number;
  /** Log entries up to here are in it (own decisions stored after may be in it too: replay skips them). */
  seq: number;
  takenAtMs: number;
  takenBy: string;
  /** The highest leadership term marked per pool by `seq` (the term fence goes on from here). */
  terms: Partial<Record<Pool, number>>;
  jobs: SerializedJob[];
  usage: ReturnType<UsageLedger['serialize']>;
  deferrals: [string, Hold | null][];
  /** The last log position that touched each job (retention lets a job go once the archive holds that far). */
  lastSeqs: [string, number][];
  /** Each pool's recent work as the green planner counted it (DeferralPlanner.serializeMix); absent in snapshots taken before it was kept. */
  workMix?: Record<string, WorkMixState>;
}

const jobSchema = z.looseObject({ id: z.string(), tenant: z.string(), state: z.string(), spec: z.looseObject({ pool: z.enum(POOLS) }), sched: z.looseObject({ id: z.string() }), attempts: z.array(z.looseObject({ attemptId: z.string(), placement: z.looseObject({ tasks: z.array(z.unknown()) }) })) });
const usageSchema = z.looseObject({ jobId: z.string() });
const deferralSchema = z.tuple([z.string(), z.looseObject({ untilMs: z.number() }).nullable()]);
const lastSeqSchema = z.tuple([z.string(), z.number().int()]);
const headerFields = {
  seq: z.number().int().min(0),
  takenAtMs: z.number(),
  takenBy: z.string(),
  terms: z.partialRecord(z.enum(POOLS), z.number().int().min(0)),
  workMix: z.record(z.string(), workMixStateSchema).optional(),
};
const counted = z.number().int().min(0);
const headerSchema = z.object({ v: z.literal(SNAPSHOT_VERSION), ...headerFields, counts: z.object({ jobs: counted, metered: counted, waiting: counted, deferrals: counted, lastSeqs: counted }) });
/** Version 1, one document: what is checked of it before it is trusted. */
const v1Schema = z.object({
  v: z.literal(1),
  ...headerFields,
  jobs: z.array(jobSchema),
  usage: z.object({ metered: z.array(usageSchema), waiting: z.array(usageSchema) }),
  deferrals: z.array(deferralSchema),
  lastSeqs: z.array(lastSeqSchema),
});

/** The kinds of line after the header, each with what is checked of it and where it goes. */
const LINES = {
  j: { schema: jobSchema, add: (s: StateSnapshot, v: unknown) => s.jobs.push(v as SerializedJob) },
  m: { schema: usageSchema, add: (s: StateSnapshot, v: unknown) => s.usage.metered.push(v as never) },
  w: { schema: usageSchema, add: (s: StateSnapshot, v: unknown) => s.usage.waiting.push(v as never) },
  d: { schema: deferralSchema, add: (s: StateSnapshot, v: unknown) => s.deferrals.push(v as [string, Hold | null]) },
  s: { schema: lastSeqSchema, add: (s: StateSnapshot, v: unknown) => s.lastSeqs.push(v as [string, number]) },
} as const;
type LineKind = keyof typeof LINES;
const line = (kind: LineKind, value: unknown) => JSON.stringify([kind, value]);

/**
 * A captured snapshot, ready to be encoded off the placement path. Call at a moment when nothing is in
 * flight (see StateKeeper): live jobs and usage are written to lines at once, because they change with the
 * next entry applied; ended jobs change no more (their reports and events are ignored), so their lines are
 * written later by `encodeSnapshot`, in slices, which is most of the work when memory holds many of them.
 */
export interface CapturedSnapshot {
  header: Omit<StateSnapshot, 'jobs' | 'usage' | 'deferrals' | 'lastSeqs'>;
  lines: string[];
  ended: SerializedJob[];
  lastSeqs: [string, number][];
  counts: { jobs: number; metered: number; waiting: number; deferrals: number; lastSeqs: number };
}

export function captureSnapshot(snapshot: StateSnapshot): CapturedSnapshot {
  const { jobs, usage, deferrals, lastSeqs, ...header } = snapshot;
  const lines: string[] = [];
  const ended: SerializedJob[] = [];
  for (const job of jobs) {
    if (TERMINAL_JOB_STATES.has(job.state)) ended.push(job);
    else lines.push(line('j', job));
  }
  for (const u of usage.metered) lines.push(line('m', u));
  for (const u of usage.waiting) lines.push(line('w', u));
  for (const d of deferrals) lines.push(line('d', d));
  return { header, lines, ended, lastSeqs, counts: { jobs: jobs.length, metered: usage.metered.length, waiting: usage.waiting.length, deferrals: deferrals.length, lastSeqs: lastSeqs.length } };
}

/** A captured snapshot as stored: gzipped lines, the header first. Gives the event loop turns as it goes. */
export async function encodeSnapshot(captured: CapturedSnapshot): Promise<Uint8Array> {
  const pace = pacer();
  const parts = [JSON.stringify({ ...captured.header, v: SNAPSHOT_VERSION, counts: captured.counts }), ...captured.lines];
  for (const job of captured.ended) {
    parts.push(line('j', job));
    await pace();
  }
  for (const s of captured.lastSeqs) {
    parts.push(line('s', s));
    await pace();
  }
  return promisify(gzip)(parts.join('\n'));
}

/** A stored snapshot back, checked line by line; throws naming what is wrong (a corrupt, cut or foreign snapshot). */
export async function decodeSnapshot(data: Uint8Array): Promise<StateSnapshot> {
  const pace = pacer();
  const unzip = createGunzip();
  unzip.setEncoding('utf8');
  unzip.end(data);
  let snapshot: StateSnapshot | undefined;
  let counts: z.infer<typeof headerSchema>['counts'] | undefined;
  let lineNo = 0;
  let rest: string[] = [];
  const take = async (text: string) => {
    lineNo++;
    if (!snapshot) {
      const first = JSON.parse(text) as { v?: unknown };
      if (first.v === 1) {
        const parsed = v1Schema.safeParse(first);
        if (!parsed.success) throw new Error(`not a valid snapshot: ${issues(parsed.error)}`);
        snapshot = parsed.data as unknown as StateSnapshot;
        return;
      }
      const parsed = headerSchema.safeParse(first);
      if (!parsed.success) throw new Error(`not a valid snapshot header: ${issues(parsed.error)}`);
      ({ counts } = parsed.data);
      const { v, seq, takenAtMs, takenBy, terms, workMix } = parsed.data;
      snapshot = { v, seq, takenAtMs, takenBy, terms, ...(workMix && { workMix }), jobs: [], usage: { metered: [], waiting: [] }, deferrals: [], lastSeqs: [] };
      return;
    }
    if (!counts) throw new Error(`line ${lineNo} after a version 1 snapshot`);
    const [kind, value] = JSON.parse(text) as [LineKind, unknown];
    const spec = LINES[kind];
    if (!spec) throw new Error(`line ${lineNo}: unknown kind ${JSON.stringify(kind)}`);
    const parsed = spec.schema.safeParse(value);
    if (!parsed.success) throw new Error(`line ${lineNo} (${kind}): ${issues(parsed.error)}`);
    spec.add(snapshot, parsed.data);
    await pace();
  };
  for await (const chunk of unzip as AsyncIterable<string>) {
    // A line longer than a chunk (a version 1 snapshot is one line) is gathered in pieces, joined once.
    if (!chunk.includes('\n')) {
      rest.push(chunk);
      continue;
    }
    const parts = chunk.split('\n');
    parts[0] = rest.join('') + parts[0];
    rest = [parts.pop()!];
    for (const text of parts) await take(text);
  }
  if (rest.join('')) await take(rest.join(''));
  if (!snapshot) throw new Error('empty snapshot');
  if (counts) {
    const got = { jobs: snapshot.jobs.length, metered: snapshot.usage.metered.length, waiting: snapshot.usage.waiting.length, deferrals: snapshot.deferrals.length, lastSeqs: snapshot.lastSeqs.length };
    if (JSON.stringify(got) !== JSON.stringify(counts)) throw new Error(`cut short: holds ${JSON.stringify(got)} of ${JSON.stringify(counts)}`);
  }
  return snapshot;
}

const issues = (error: z.ZodError) => error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
