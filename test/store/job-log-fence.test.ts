import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import type { JobEvent, JobSubmitted, Pool } from '../../src/protocol';
import { JobLog, TermFence, type LogEntry } from '../../src/store/job-log';
import { connectNats, ensureStreams } from '../../src/store/nats';
import { createLogger } from '../../src/telemetry/logger';
import { waitUntil } from '../helpers/api';

const log = createLogger({ name: 'fence-test', level: 'silent' });
let nats: LocalNatsServer;
let jobLog: JobLog;
let close: () => Promise<void>;

beforeAll(async () => {
  nats = await startNatsServer();
  const nc = await connectNats(nats.url, 'fence-test', log);
  await ensureStreams(nc, { replicas: 1, duplicateWindowMs: 60_000 });
  jobLog = new JobLog(nc, log);
  close = () => nc.close();
});

afterAll(async () => {
  await close?.();
  await nats?.dispose();
});

const submitted = (jobId: string, term: number | undefined, pool: Pool = 'general'): JobSubmitted => ({
  type: 'submitted',
  v: 1,
  jobId,
  tenant: 'city-a',
  spec: { pool, priorityClass: 'normal', tasks: 1, resources: { cpuMillis: 1000, memBytes: 1024, gpus: 0, gpuMilli: 0, gpuMemBytes: 0, extended: {} }, constraints: { gpuModels: [], nodeSelector: {}, affinity: [], antiAffinity: [], preferred: [], tolerations: [] }, dataClass: 'public', sandbox: false },
  submittedAtMs: 1,
  priority: 500,
  maxAttempts: 3,
  term,
});
const marker = (pool: Pool, term: number) => ({ type: 'term' as const, pool, term, holder: `r${term}`, address: 'http://x', atMs: 1 });
const cancel = (jobId: string, term: number): JobEvent => ({ type: 'cancel-requested', jobId, reason: 'x', atMs: 1, term });

/** What a reader keeps of the log behind a fence: event ids (cancels as `cancel:<job>`). */
function reader() {
  const fence = new TermFence();
  const pools = new Map<string, Pool>();
  const kept: string[] = [];
  const take = (entry: LogEntry) => {
    if (!fence.admits(entry, (e) => (e.type === 'submitted' ? e.spec.pool : pools.get(e.jobId)))) return;
    if (entry.kind !== 'event') return;
    if (entry.event.type === 'submitted') pools.set(entry.event.jobId, entry.event.spec.pool);
    kept.push(entry.event.type === 'submitted' ? entry.event.jobId : `cancel:${entry.event.jobId}`);
  };
  return { fence, kept, take };
}

test('a deposed leader’s write stored after its pool’s next term marker is not history, for replay and for a follower; other pools are not fenced', async () => {
  const append = async (e: JobEvent) => (await jobLog.append(e)).seq;
  expect(await jobLog.lastTerm('general')).toBe(0);
  await append(submitted('before-ha', undefined)); // written before replicas existed: no term
  await jobLog.appendTerm(marker('general', 1));
  await jobLog.appendTerm(marker('intelligent', 1));
  await append(submitted('by-one', 1));
  await append(submitted('gpu-by-one', 1, 'intelligent'));
  await jobLog.appendTerm(marker('general', 2));
  await append(submitted('late-by-one', 1)); // general's leader of term 1, deposed, still writing
  await append(cancel('by-one', 1)); // … about a job it submitted before the marker: fenced too
  await append(submitted('gpu-still-one', 1, 'intelligent')); // intelligent's leader is not deposed
  await append(submitted('by-two', 2));
  expect(await jobLog.lastTerm('general')).toBe(2);
  expect(await jobLog.lastTerm('intelligent')).toBe(1);

  const replayed = reader();
  const lastSeq = await jobLog.replay(replayed.take);
  expect(replayed.kept).toEqual(['before-ha', 'by-one', 'gpu-by-one', 'gpu-still-one', 'by-two']);
  expect(replayed.fence.termOf('general')).toBe(2);

  // A follower keeps the fence it reached.
  const followed = reader();
  await jobLog.replay(followed.take);
  const feed = await jobLog.follow(lastSeq, followed.take);
  await append(submitted('later-by-one', 1));
  await jobLog.appendTerm(marker('general', 3));
  await append(submitted('by-three', 3));
  await append(cancel('by-two', 2));
  await append(submitted('last-by-three', 3));
  await waitUntil(() => (followed.kept.includes('last-by-three') ? true : undefined), 5_000);
  await feed.close();
  expect(followed.kept.slice(replayed.kept.length)).toEqual(['by-three', 'last-by-three']);
});
