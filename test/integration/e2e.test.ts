import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import type { JobSpecInput, JobView, NodeView, PoolView } from '../../src/protocol';
import { waitUntil, type ApiClient } from '../helpers/api';
import { observeCycles, startAgent, startScheduler, testNode, waitForNodes, waitForPendingReason, type TestScheduler } from '../helpers/stack';

const MiB = 1024 ** 2;
const small = { cpuMillis: 100, memBytes: 16 * MiB };
const general = (command: string[], extra: Partial<JobSpecInput> = {}): JobSpecInput => ({ pool: 'general', resources: small, command, ...extra });

let nats: LocalNatsServer;
let s: TestScheduler;
let api: ApiClient;
let operator: ApiClient;
const agents: Agent[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url);
  api = s.api;
  operator = s.operator;
  agents.push(await startAgent(nats.url, 'gen', [testNode('gen-1', 'general', { labels: { host: 'gen-1' } }), testNode('gen-2', 'general', { labels: { host: 'gen-2' } })]));
  agents.push(await startAgent(nats.url, 'hpc', ['hpc-1', 'hpc-2', 'hpc-3', 'hpc-4'].map((id, i) => testNode(id, 'super', { rack: `r${i % 2}` }))));
  agents.push(await startAgent(nats.url, 'gpu', [testNode('gpu-1', 'intelligent')]));
  await waitForNodes(operator, ['gen-1', 'gen-2', 'hpc-1', 'hpc-2', 'hpc-3', 'hpc-4', 'gpu-1']);
});

afterAll(async () => {
  await s?.close();
  for (const a of agents) await a.stop();
  await nats?.dispose();
});

describe('jobs run on agents and report how they ended', () => {
  test('`true` succeeds with exit code 0', async () => {
    const id = await api.submit(general(['true']));
    const job = await api.waitFor(id, ['succeeded', 'failed']);
    expect(job.state).toBe('succeeded');
    expect(job.exitCode).toBe(0);
    expect(['gen-1', 'gen-2']).toContain(job.placement?.[0].nodeId);
    expect(job.placement?.[0].state).toBe('succeeded');
    expect(job.attempts).toBe(1);
    expect(job.startedAt).toBeDefined();
    expect(job.finishedAt).toBeDefined();
  });

  test("`sh -c 'exit 3'` fails with exit code 3 and its output is readable", async () => {
    const id = await api.submit(general(['sh', '-c', 'echo something went wrong >&2; exit 3']));
    const job = await api.waitFor(id, ['succeeded', 'failed']);
    expect(job.state).toBe('failed');
    expect(job.exitCode).toBe(3);
    expect(job.reason).toBe('exited with code 3');
    const log = await api.request<{ text: string; nodeId: string }>('GET', `/v1/jobs/${id}/log`);
    expect(log.status).toBe(200);
    expect(log.body.text).toContain('something went wrong');
    expect(log.body.nodeId).toBe(job.placement?.[0].nodeId);
  });

  test('a command that does not exist fails with a reason', async () => {
    const id = await api.submit(general(['/no/such/program']));
    const job = await api.waitFor(id, ['succeeded', 'failed']);
    expect(job.state).toBe('failed');
    expect(job.reason).toMatch(/could not start \/no\/such\/program/);
  });

  test('cancel stops a running sleep; cancelling again is refused', async () => {
    const id = await api.submit(general(['sh', '-c', 'echo started; sleep 30; echo finished']));
    await api.waitFor(id, ['running']);
    // Running is reported when the process is spawned: wait until it has printed, on a busy machine that takes a while.
    await waitUntil(async () => ((await api.request<{ text: string }>('GET', `/v1/jobs/${id}/log`)).body.text?.includes('started') ? true : undefined), 10_000, () => 'the task never printed');
    const res = await api.request<{ state: string }>('DELETE', `/v1/jobs/${id}`);
    expect(res.status).toBe(202);
    expect(['cancelling', 'cancelled']).toContain(res.body.state);
    const job = await api.waitFor(id, ['cancelled'], 10_000);
    expect(job.placement?.[0].signal).toBe('SIGTERM');
    const log = await api.request<{ text: string }>('GET', `/v1/jobs/${id}/log`);
    expect(log.body.text).toContain('started');
    expect(log.body.text).not.toContain('finished');
    const again = await api.request<{ code: string; statusCode: number; message: string }>('DELETE', `/v1/jobs/${id}`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'QY_ERR_JOB_FINISHED', statusCode: 409, message: `Job ${id} has already finished (cancelled)` });
  });

  test('cancel of a pending job takes it out of the queue', async () => {
    await operator.request('POST', '/v1/nodes/gen-1/cordon');
    const id = await api.submit({ pool: 'general', resources: small, command: ['true'], constraints: { nodeSelector: { host: 'gen-1' } } });
    expect((await api.job(id)).state).toBe('pending');
    expect((await api.request('DELETE', `/v1/jobs/${id}`)).status).toBe(202);
    await operator.request('POST', '/v1/nodes/gen-1/uncordon');
    const job = await api.job(id);
    expect(job.state).toBe('cancelled');
    expect(job.attempts).toBe(0);
    expect((await api.request<{ items: PoolView[] }>('GET', '/v1/pools')).body.items.find((p) => p.pool === 'general')?.queue.pending).toBe(0);
  });

  test('walltime is enforced: SIGTERM, then the job fails', async () => {
    const id = await api.submit(general(['sleep', '30'], { walltimeSeconds: 1 }));
    const job = await api.waitFor(id, ['succeeded', 'failed'], 15_000);
    expect(job.state).toBe('failed');
    expect(job.reason).toMatch(/walltime of 1000 ms exceeded/);
    expect(job.placement?.[0].signal).toBe('SIGTERM');
  });

  test('GPU tasks see their GPUs and cores in the environment', async () => {
    const id = await api.submit({ pool: 'intelligent', resources: { cpuMillis: 2000, memBytes: 16 * MiB, gpus: 2 }, command: ['sh', '-c', 'echo gpus=$CUDA_VISIBLE_DEVICES cpus=$QY_CPUS job=$QY_JOB_ID'] });
    const job = await api.waitFor(id, ['succeeded', 'failed']);
    expect(job.state).toBe('succeeded');
    const log = await api.request<{ text: string }>('GET', `/v1/jobs/${id}/log`);
    expect(log.body.text.trim()).toBe(`gpus=0,1 cpus=2 job=${id}`);
  });

  test('a gang of 4 starts all or nothing, each task with its rank', async () => {
    const blocker = await api.submit({ pool: 'super', resources: small, walltimeSeconds: 60, command: ['sleep', '30'] });
    await api.waitFor(blocker, ['running']);
    const gang = await api.submit({ pool: 'super', tasks: 4, resources: small, walltimeSeconds: 60, command: ['sh', '-c', 'echo rank=$QY_RANK of $QY_WORLD_SIZE on $QY_NODE_ID'] });
    await waitForPendingReason(api, gang);
    await observeCycles(s, 'super');
    const waiting = await api.job(gang);
    expect(waiting.state).toBe('pending');
    expect(waiting.attempts).toBe(0);
    expect(waiting.placement).toBeUndefined();
    expect(waiting.pendingReason).toMatch(/0\/4 nodes fit \(3 of 4 tasks of the gang fit now\)/);
    await api.request('DELETE', `/v1/jobs/${blocker}`);
    const job = await api.waitFor(gang, ['succeeded', 'failed'], 15_000);
    expect(job.state).toBe('succeeded');
    expect(new Set(job.placement?.map((p) => p.nodeId)).size).toBe(4);
    for (let rank = 0; rank < 4; rank++) {
      const log = await api.request<{ text: string; nodeId: string }>('GET', `/v1/jobs/${gang}/log?task=${rank}`);
      expect(log.body.text.trim()).toBe(`rank=${rank} of 4 on ${log.body.nodeId}`);
    }
  });

  test('a failing task of a gang stops the others and fails the job', async () => {
    const gang = await api.submit({ pool: 'super', tasks: 2, resources: small, walltimeSeconds: 60, command: ['sh', '-c', 'if [ "$QY_RANK" = 1 ]; then exit 7; fi; sleep 30'] });
    const job = await api.waitFor(gang, ['succeeded', 'failed'], 15_000);
    expect(job.state).toBe('failed');
    expect(job.exitCode).toBe(7);
    expect(job.placement?.map((p) => p.state).sort()).toEqual(['cancelled', 'failed']);
  });
});

describe('idempotent submission', () => {
  test('the same Idempotency-Key returns the same job, never a second one', async () => {
    const spec = general(['true']);
    const first = await api.request<{ id: string }>('POST', '/v1/jobs', { body: spec, headers: { 'idempotency-key': 'order-42' } });
    const [second, third] = await Promise.all([
      api.request<{ id: string }>('POST', '/v1/jobs', { body: spec, headers: { 'idempotency-key': 'order-42' } }),
      api.request<{ id: string }>('POST', '/v1/jobs', { body: spec, headers: { 'idempotency-key': 'order-42' } }),
    ]);
    expect(first.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(third.body.id).toBe(first.body.id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const listed = (await api.request<{ items: JobView[] }>('GET', '/v1/jobs?limit=1000')).body.items.filter((j) => j.id === first.body.id);
    expect(listed).toHaveLength(1);
  });

  test('the same key with another body is refused', async () => {
    await api.submit(general(['true']), 'order-43');
    const res = await api.request<{ code: string; statusCode: number; message: string }>('POST', '/v1/jobs', { body: general(['false']), headers: { 'idempotency-key': 'order-43' } });
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ code: 'QY_ERR_IDEMPOTENCY_KEY_REUSED', statusCode: 409, message: 'Idempotency-Key order-43 was already used for a different job body' });
  });
});

describe('operators: nodes, pools, cordon and drain', () => {
  test('a cordoned pool keeps jobs pending with the reason; uncordon lets them run', async () => {
    for (const n of ['gen-1', 'gen-2']) expect((await operator.request<NodeView>('POST', `/v1/nodes/${n}/cordon`)).body.state).toBe('cordoned');
    const id = await api.submit(general(['true']));
    await waitForPendingReason(api, id);
    await observeCycles(s, 'general');
    const waiting = await api.job(id);
    expect(waiting.state).toBe('pending');
    expect(waiting.pendingReason).toBe('0/2 nodes fit: 2 cordoned');
    for (const n of ['gen-1', 'gen-2']) await operator.request('POST', `/v1/nodes/${n}/uncordon`);
    expect((await api.waitFor(id, ['succeeded'])).state).toBe('succeeded');
  });

  test('drain with requeue moves a running job to another node', async () => {
    const id = await api.submit(general(['sleep', '2'], { constraints: { nodeSelector: {}, affinity: [{ key: 'host', operator: 'In', values: ['gen-1', 'gen-2'] }] } }));
    const running = await api.waitFor(id, ['running']);
    const from = running.placement![0].nodeId;
    const drained = await operator.request<NodeView & { requeued: number }>('POST', `/v1/nodes/${from}/drain`, { body: { requeue: true } });
    expect(drained.status).toBe(200);
    expect(drained.body).toMatchObject({ id: from, state: 'cordoned', cordoned: true, draining: true, requeued: 1 });
    const job = await api.waitFor(id, ['succeeded'], 15_000);
    expect(job.attempts).toBe(2);
    expect(job.placement![0].nodeId).not.toBe(from);
    expect(job.history[0]).toMatchObject({ nodes: [from], outcome: 'requeued', reason: `node ${from} drained` });
    await operator.request('POST', `/v1/nodes/${from}/uncordon`);
  });

  test('pools report capacity, allocation and queue', async () => {
    const res = await api.request<{ items: PoolView[] }>('GET', '/v1/pools');
    expect(res.status).toBe(200);
    const byPool = Object.fromEntries(res.body.items.map((p) => [p.pool, p]));
    expect(byPool.general.capacity.cpuMillis).toBe(16_000);
    expect(byPool.super.nodes.ready).toBe(4);
    expect(byPool.intelligent.capacity.gpus).toBe(4);
  });

  test('nodes report their state and telemetry', async () => {
    const res = await operator.request<{ items: NodeView[] }>('GET', '/v1/nodes');
    const gpu = res.body.items.find((n) => n.id === 'gpu-1')!;
    expect(gpu).toMatchObject({ pool: 'intelligent', state: 'ready', gpuModel: 'A800', greenShare: 0.6 });
    expect(gpu.powerWatts).toBeGreaterThan(0);
  });

  test('the OpenAPI document describes the API', async () => {
    const res = await api.request<{ openapi: string; paths: Record<string, unknown> }>('GET', '/docs/json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/tenants', '/v1/tenants/{name}/quotas', '/v1/audit']));
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/log', '/v1/nodes', '/v1/pools', '/v1/nodes/{id}/drain']));
  });

  test('health and readiness', async () => {
    expect((await api.request('GET', '/healthz')).body).toEqual({ ok: true });
    expect((await api.request('GET', '/readyz')).body).toMatchObject({ ready: true, role: 'leader', pools: { general: { role: 'leader', leader: { term: expect.any(Number) } } } });
    expect((await api.request('GET', '/readyz?role=leader')).status).toBe(200);
  });
});
