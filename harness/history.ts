import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS, attemptIdOf, subjects, type JobSubmitted, type StatusReport } from '../src/protocol';
import { JetStreamPublisher } from '../src/store/js-publisher';
import { connectNats } from '../src/store/nats';
import { waitUntil } from './wait';

/**
 * The term synthetic entries carry: above any term an election of a run reaches, so the leader takes them as
 * another writer's (its own decisions are already in its memory and skipped when it reads them back) and no
 * marker fences them off. (The term the leader had plus one was not enough: a re-election in the middle of a
 * round marked a higher term, and the fence rightly dropped the rest of the round as a deposed writer's.)
 */
export const SYNTHETIC_TERM = 1_000_000_000;

/** Synthetic history is best written in rounds of this many jobs, each taken in before the next. */
export const SYNTHETIC_ROUND = 50_000;

/** The id of the `i`-th synthetic job (`h000000042`). */
export function syntheticJobId(i: number): string {
  return `h${String(i).padStart(9, '0')}`;
}

/**
 * Writes `count` finished jobs (ids `syntheticJobId(offset …)`) straight to the job log, as history that
 * went through the scheduler long ago: submitted and placed on `nodeId` in one message, then a succeeded
 * report. The scheduler takes them in (archives them, lets them go after their retention) as it would its own.
 */
export async function writeSyntheticHistory(natsUrl: string, o: { count: number; offset: number; nodeId: string; tenant: string }): Promise<void> {
  const nc = await connectNats(natsUrl, 'synthetic-history');
  const publisher = new JetStreamPublisher(nc);
  const window: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < o.count; i++) {
      const jobId = syntheticJobId(o.offset + i);
      const attemptId = attemptIdOf(jobId, 1);
      const atMs = Date.now();
      const task = { taskIndex: 0, nodeId: o.nodeId, cpuMillis: 10, memBytes: 1024, gpuIndices: [], gpuMilliEach: 0, extended: {} };
      const submitted: JobSubmitted = {
        type: 'submitted', v: 1, jobId, tenant: o.tenant, priority: 500, maxAttempts: 3, submittedAtMs: atMs, term: SYNTHETIC_TERM,
        spec: { pool: 'general', tasks: 1, priorityClass: 'normal', dataClass: 'public', resources: { cpuMillis: 10, memBytes: 1024, gpus: 0, gpuMilli: 0, gpuMemBytes: 0, extended: {} }, constraints: { gpuModels: [], nodeSelector: {}, affinity: [], antiAffinity: [], preferred: [], tolerations: [] }, sandbox: false, env: {}, labels: {} } as never,
        placed: { attempt: 1, attemptId, placement: { jobId, tenant: o.tenant, pool: 'general', dataClass: 'public', exclusive: false, tasks: [task] } },
      };
      const done: StatusReport = { type: 'status', nodeId: o.nodeId, jobId, attemptId, taskIndex: 0, state: 'succeeded', exitCode: 0, atMs: atMs + 1 };
      window.push(publisher.publish(subjects.jobEvent(jobId, 'submitted'), JSON.stringify(submitted)), publisher.publish(subjects.status(o.nodeId), JSON.stringify(done)));
      if (window.length >= 512) await Promise.all(window.splice(0));
    }
    await Promise.all(window);
  } finally {
    publisher.close();
    await nc.close();
  }
}

/** The last position of the job log. */
export async function lastJobLogSeq(natsUrl: string): Promise<number> {
  const nc = await connectNats(natsUrl, 'job-log-probe');
  try {
    return (await (await jetstreamManager(nc)).streams.info(STREAMS.jobs)).state.last_seq;
  } finally {
    await nc.close();
  }
}

/**
 * A value of a scheduler's metrics (0 when absent): one series named with its labels
 * (`qy_state_snapshots_total{result="stored"}`), or a metric's name alone, which sums all its series
 * (`qy_jobs_pending`, over pools and classes).
 */
export async function scrapeMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const series = name.includes('{') ? [`${name} `] : [`${name} `, `${name}{`];
  return text
    .split('\n')
    .filter((l) => series.some((prefix) => l.startsWith(prefix)))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Where history goes and who takes it in: schedulers (the first leads) and the state they must reach. */
export interface HistoryTarget {
  natsUrl: string;
  /** Scheduler URLs; the first one leads (its archive lag and snapshots are the ones that count). */
  urls: string[];
  /** A further condition (the first scheduler leads again after a restart or a pause). */
  ready?: () => Promise<boolean>;
}

/** The most jobs any of the schedulers holds in memory. */
async function mostInMemory(urls: string[]): Promise<number> {
  return Math.max(...(await Promise.all(urls.map((u) => scrapeMetric(u, 'qy_jobs_in_memory')))));
}

/**
 * Writes `count` jobs of synthetic history in rounds of SYNTHETIC_ROUND, each taken in (archived and let go
 * from every scheduler's memory) before the next: history arrives over weeks, not in one burst, and a burst
 * of a million jobs at JetStream's full speed starves the lease's own writes. `afterRound` runs between
 * writing a round and waiting for it (a fault, a progress line).
 */
export async function writeHistoryInRounds(target: HistoryTarget, o: { count: number; offset: number; nodeId: string; tenant: string; afterRound?: (written: number) => Promise<void> | void }): Promise<void> {
  for (let done = 0; done < o.count; done += SYNTHETIC_ROUND) {
    const round = Math.min(SYNTHETIC_ROUND, o.count - done);
    await writeSyntheticHistory(target.natsUrl, { count: round, offset: o.offset + done, nodeId: o.nodeId, tenant: o.tenant });
    await o.afterRound?.(done + round);
    await waitUntil(
      async () => ((await (target.ready?.() ?? true)) && (await mostInMemory(target.urls)) < SYNTHETIC_ROUND / 2 ? true : undefined),
      30 * 60_000,
      async () => `history round not taken in: ${await mostInMemory(target.urls)} jobs in memory`,
    );
  }
}

/**
 * Waits until history has settled: every scheduler holds fewer than `below` jobs in memory, the leader's
 * archive has caught up, and its newest snapshot covers the whole log and was taken after history left
 * memory (one taken just before would hold it all, and a rebuild would load it back).
 */
export async function waitHistorySettled(target: HistoryTarget, below: number): Promise<void> {
  const [leader] = target.urls;
  const lag = () => scrapeMetric(leader, 'qy_archive_lag_seconds');
  await waitUntil(
    async () => ((await (target.ready?.() ?? true)) && (await mostInMemory(target.urls)) < below && (await lag()) === 0 ? true : undefined),
    30 * 60_000,
    async () => `history did not settle: ${await mostInMemory(target.urls)} jobs in memory, archive lag ${await lag()} s`,
  );
  const seq = await lastJobLogSeq(target.natsUrl);
  await waitUntil(
    async () => ((await scrapeMetric(leader, 'qy_state_snapshot_seq')) >= seq && (await scrapeMetric(leader, 'qy_state_snapshot_jobs')) < below ? true : undefined),
    10 * 60_000,
    async () => `no snapshot of the history let go reached position ${seq} (last at ${await scrapeMetric(leader, 'qy_state_snapshot_seq')}, holding ${await scrapeMetric(leader, 'qy_state_snapshot_jobs')} jobs)`,
  );
}
