import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../src/local/nats-server';
import type { JobEvent, JobSubmitted } from '../../src/protocol';
import { JobLog, type LogEntry } from '../../src/store/job-log';
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

const submitted = (jobId: string, term: number | undefined): JobSubmitted => ({
  type: 'submitted',
  v: 1,
  jobId,
  tenant: 'city-a',
  spec: { pool: 'general', priorityClass: 'normal', tasks: 1, resources: { cpuMillis: 1000, memBytes: 1024, gpus: 0, gpuMilli: 0, gpuMemBytes: 0, extended: {} }, constraints: { gpuModels: [], nodeSelector: {}, affinity: [], antiAffinity: [], preferred: [], tolerations: [] }, dataClass: 'public', sandbox: false },
  submittedAtMs: 1,
  priority: 500,
  maxAttempts: 3,
  term,
});

test('a deposed leader’s write stored after the new leader’s term marker is not history, for replay and for a follower', async () => {
  const marker = (term: number) => ({ type: 'term' as const, term, holder: `r${term}`, address: 'http://x', atMs: 1 });
  const append = async (e: JobEvent) => (await jobLog.append(e)).seq;
  expect(await jobLog.lastTerm()).toBe(0);
  await append(submitted('before-ha', undefined)); // written before replicas existed: no term
  await jobLog.appendTerm(marker(1));
  await append(submitted('by-one', 1));
  const fenceSeq = await jobLog.appendTerm(marker(2));
  await append(submitted('late-by-one', 1)); // term 1's leader, deposed, still writing
  await append(submitted('by-two', 2));
  expect(await jobLog.lastTerm()).toBe(2);

  const ids = (entries: LogEntry[]) => entries.flatMap((e) => (e.kind === 'event' ? [e.event.jobId] : []));
  const replayed: LogEntry[] = [];
  const { lastSeq, fence } = await jobLog.replay((e) => replayed.push(e));
  expect(ids(replayed)).toEqual(['before-ha', 'by-one', 'by-two']);
  expect(fence.term).toBe(2);

  // The new leader replays up to its own marker: it knows what was stored before, nothing after.
  const upToMarker: LogEntry[] = [];
  await jobLog.replay((e) => upToMarker.push(e), fenceSeq);
  expect(ids(upToMarker)).toEqual(['before-ha', 'by-one']);

  // A standby following from the end keeps the fence it reached.
  const followed: LogEntry[] = [];
  const feed = await jobLog.followAll(lastSeq, fence, (e) => followed.push(e));
  await append(submitted('later-by-one', 1));
  await jobLog.appendTerm(marker(3));
  await append(submitted('by-three', 3));
  await append(submitted('late-by-two', 2));
  await append(submitted('last-by-three', 3));
  await waitUntil(() => (ids(followed).includes('last-by-three') ? true : undefined), 5_000);
  await feed.close();
  expect(ids(followed)).toEqual(['by-three', 'last-by-three']);
});
