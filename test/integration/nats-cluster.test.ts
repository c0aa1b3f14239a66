import { afterEach, expect, test } from 'vitest';
import { startNatsCluster } from '../../harness/nats-server';
import type { JobSpecInput } from '../../src/protocol';
import { waitUntil, type ApiClient } from '../helpers/api';
import { spawnScheduler, spawnVirtualNodeAgent, testTenantsFile } from '../helpers/stack';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

const job: JobSpecInput = { pool: 'general', resources: { cpuMillis: 500, memBytes: 1024 ** 3 }, durationSeconds: 1 };

let logs: (() => string) | undefined;
/** Submits with an Idempotency-Key to whichever replica accepts it (the leader), trying each in turn. */
async function submit(replicas: ApiClient[], key: string): Promise<string> {
  return waitUntil(async () => {
    for (const api of replicas) {
      const res = await api.request<{ id: string }>('POST', '/v1/jobs', { body: job, headers: { 'idempotency-key': key } }).catch(() => undefined);
      if (res?.status === 202) return res.body.id;
    }
    return undefined;
  }, 450_000, () => `job ${key} was never accepted${logs ? `\n${logs()}` : ''}`);
}

test('on a 3-node JetStream cluster with replicas 3, losing a NATS server and then the leading scheduler loses no acknowledged job', async () => {
  const cluster = await startNatsCluster(3);
  cleanups.push(() => cluster.dispose());
  const tenants = testTenantsFile();
  const env = (replica: string) => ({ QY_STREAM_REPLICAS: '3', QY_REPLICA_ID: replica });
  const a = await spawnScheduler(cluster.url, undefined, env('a'), tenants);
  cleanups.push(() => a.kill9());
  const b = await spawnScheduler(cluster.url, undefined, env('b'), tenants, { standby: true });
  cleanups.push(() => b.stop());
  const agent = spawnVirtualNodeAgent(cluster.url, 6, 'nc');
  cleanups.push(() => agent.stop());
  await waitUntil(async () => ((await a.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length >= 6 ? true : undefined), 30_000, agent.output);
  const replicas = [a.api, b.api];
  logs = () => `replica a:\n${a.output()}\nreplica b:\n${b.output()}`;

  const ids = new Set<string>();
  for (let i = 0; i < 10; i++) ids.add(await submit(replicas, `before-${i}`));
  // One NATS server goes: two of three still hold every stream and bucket.
  await cluster.servers[0].stop();
  for (let i = 0; i < 10; i++) ids.add(await submit(replicas, `no-nats-1-${i}`));
  // And the leading scheduler: the standby takes over. With a NATS server gone, nats-server 2.9 leaves about
  // a quarter of JetStream API requests unanswered, at times one kind for half a minute in a row (the
  // scheduler retries each), so the takeover may take minutes rather than the lease: the job log's replay
  // (an ordered consumer, a stream info first) has failed after 30 tries of 2 s, twice in a row, before it
  // went through (220 and 281 s for the whole test on 2026-12-05, against 15–94 s before). On 2026-12-06 one
  // run's standby failed that way four times in a row and was still not leading 300 s after the kill; what is
  // tested here is that no acknowledged job is lost, so the standby is given 450 s to take over.
  await a.kill9();
  for (let i = 0; i < 10; i++) ids.add(await submit(replicas, `no-leader-${i}`));
  expect(ids.size).toBe(30);

  const ready = await waitUntil(async () => ((await b.api.request<{ role: string; leader: { replica: string } }>('GET', '/readyz')).body.role === 'leader' ? true : undefined), 30_000);
  expect(ready).toBe(true);
  for (const id of ids) expect((await b.api.waitFor(id, ['succeeded', 'failed', 'cancelled'], 60_000)).state).toBe('succeeded');
}, 780_000);
