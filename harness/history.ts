import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS, attemptIdOf, subjects, type JobSubmitted, type StatusReport } from '../src/protocol';
import { JetStreamPublisher } from '../src/store/js-publisher';
import { connectNats } from '../src/store/nats';

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

/** A value of a scheduler's metrics: the first series of that name (0 when absent). */
export async function scrapeMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}
