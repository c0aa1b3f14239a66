import { afterEach, describe, expect, test } from 'vitest';
import { JobLog } from '../../src/store/job-log';
import { connectNats } from '../../src/store/nats';
import { startNatsServer } from '../../harness/nats-server';
import type { JobSpecInput, JobView, StatusReport } from '../../src/protocol';
import { waitUntil, type ApiClient } from '../helpers/api';
import { silentLog, spawnScheduler, spawnVirtualNodeAgent, startAgent, startScheduler, testNode, waitForNodes, type ChildService } from '../helpers/stack';

const GiB = 1024 ** 3;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/** Every status report in the job log, in order. */
async function statusesInLog(natsUrl: string): Promise<StatusReport[]> {
  const nc = await connectNats(natsUrl, 'test-reader');
  try {
    const out: StatusReport[] = [];
    await new JobLog(nc, silentLog).replay((e) => {
      if (e.kind === 'status') out.push(e.status);
    });
    return out;
  } finally {
    await nc.close();
  }
}

/** Fails when two attempts of one job were running at the same time, according to the agents' reports. */
function assertNoOverlappingAttempts(statuses: StatusReport[]): void {
  const spans = new Map<string, Map<string, { start: number; end: number }>>();
  for (const s of statuses) {
    const byAttempt = spans.get(s.jobId) ?? new Map<string, { start: number; end: number }>();
    spans.set(s.jobId, byAttempt);
    const span = byAttempt.get(s.attemptId) ?? { start: Infinity, end: -Infinity };
    byAttempt.set(s.attemptId, span);
    if (s.state === 'running') span.start = Math.min(span.start, s.atMs);
    else span.end = Math.max(span.end, s.atMs);
  }
  for (const [jobId, byAttempt] of spans) {
    const list = [...byAttempt.values()].filter((s) => s.start !== Infinity).sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) expect(list[i].start, `job ${jobId} ran two attempts at once`).toBeGreaterThanOrEqual(list[i - 1].end);
  }
}

async function settle(api: ApiClient, ids: string[], timeoutMs: number): Promise<JobView[]> {
  const views: JobView[] = [];
  for (const id of ids) views.push(await api.waitFor(id, ['succeeded', 'failed', 'cancelled'], timeoutMs));
  return views;
}

const quick = (i: number): JobSpecInput => ({ name: `burst-${i}`, pool: 'general', resources: { cpuMillis: 1000, memBytes: GiB }, durationSeconds: i % 2 });

describe('nothing acknowledged is lost', () => {
  test('kill -9 of the scheduler during a burst: every acknowledged job finishes, none twice at once', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const first = await spawnScheduler(nats.url);
    const port = Number(new URL(first.url).port);
    cleanups.push(() => first.kill9());
    const agent = spawnVirtualNodeAgent(nats.url, 20, 'crash');
    cleanups.push(() => agent.stop());
    await waitUntil(async () => ((await first.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length >= 20 ? true : undefined), 20_000, agent.output);

    const acked: string[] = [];
    let sent = 0;
    let killed = false;
    const worker = async () => {
      while (sent < 400) {
        const i = sent++;
        if (!killed && acked.length >= 120) {
          killed = true;
          await first.kill9();
        }
        try {
          const res = await first.api.request<{ id: string }>('POST', '/v1/jobs', { body: quick(i) });
          if (res.status === 202) acked.push(res.body.id);
        } catch {
          // the scheduler is gone: this submission was never acknowledged
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(killed).toBe(true);

    const second = await spawnScheduler(nats.url, port, {}, first.tenants);
    cleanups.push(() => second.stop());
    const views = await settle(second.api, acked, 60_000);
    expect(views.map((v) => v.state).filter((s) => s !== 'succeeded')).toEqual([]);
    assertNoOverlappingAttempts(await statusesInLog(nats.url));
  });

  test('kill -9 of an agent: its jobs are requeued after the timeout and finish elsewhere', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const s = await startScheduler(nats.url);
    cleanups.push(() => s.close());
    const doomed: ChildService = spawnVirtualNodeAgent(nats.url, 6, 'ka');
    cleanups.push(() => doomed.kill9());
    const survivor = spawnVirtualNodeAgent(nats.url, 6, 'kb');
    cleanups.push(() => survivor.stop());
    await waitUntil(async () => ((await s.operator.request<{ items: unknown[] }>('GET', '/v1/nodes')).body.items.length >= 12 ? true : undefined), 20_000);

    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await s.api.submit({ pool: 'general', resources: { cpuMillis: 16_000, memBytes: 8 * GiB }, durationSeconds: 3 }));
    const running = await Promise.all(ids.map((id) => s.api.waitFor(id, ['running'])));
    const onDoomed = running.filter((j) => j.placement![0].nodeId.startsWith('ka-')).map((j) => j.id);
    expect(onDoomed.length).toBeGreaterThan(0);
    await doomed.kill9();

    const views = await settle(s.api, ids, 30_000);
    for (const v of views) expect(v.state).toBe('succeeded');
    for (const v of views.filter((j) => onDoomed.includes(j.id))) {
      expect(v.attempts).toBe(2);
      expect(v.placement![0].nodeId).toMatch(/^kb-/);
      expect(v.history[0]).toMatchObject({ outcome: 'requeued' });
      expect(v.history[0].reason).toMatch(/^node ka-.* is down \(no heartbeat for 1500 ms\)$/);
    }
    const nodes = (await s.operator.request<{ items: { id: string; state: string }[] }>('GET', '/v1/nodes')).body.items;
    expect(nodes.filter((n) => n.id.startsWith('ka-')).every((n) => n.state === 'down')).toBe(true);
  });

  test('a NATS restart under load: acknowledged jobs all finish', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const s = await startScheduler(nats.url);
    cleanups.push(() => s.close());
    const agent = await startAgent(nats.url, 'nr', [testNode('nr-1'), testNode('nr-2')], 'virtual');
    cleanups.push(() => agent.stop());
    await waitForNodes(s.operator, ['nr-1', 'nr-2']);

    const acked: string[] = [];
    const refused: number[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const res = await s.api.request<{ id: string }>('POST', '/v1/jobs', { body: { pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0 } }).catch(() => undefined);
        if (res?.status === 202) acked.push(res.body.id);
        else refused.push(res?.status ?? 0);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitUntil(() => (acked.length >= 50 ? true : undefined), 10_000);
    await nats.restart();
    const ackedBeforeRestartDone = acked.length;
    await waitUntil(() => (acked.length >= ackedBeforeRestartDone + 50 ? true : undefined), 30_000, () => `no submissions accepted after the restart; refused: ${refused.slice(-5).join(',')}`);
    stop = true;
    await load;
    expect(refused.every((status) => status === 503)).toBe(true);
    const views = await settle(s.api, acked, 60_000);
    expect(views.filter((v) => v.state !== 'succeeded').map((v) => `${v.id}:${v.state}:${v.reason}`)).toEqual([]);
  });
});
