import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { loadSchedulerConfig } from '../../scheduler/config';
import { NodeRegistry } from '../../scheduler/nodes';
import { STREAMS, agentConsumerName, type AuditRecord, type JobSpecInput, type NodeView } from '../../src/protocol';
import { connectNats, openBucket } from '../../src/store/nats';
import { waitUntil, type ApiClient } from '../helpers/api';
import { silentLog, startAgent, startScheduler, testNode, testTenantsFile, waitForNodes, type TestScheduler } from '../helpers/stack';

let nats: LocalNatsServer;
let one: TestScheduler;
let two: TestScheduler;
const agents: Agent[] = [];

/** Down (no heartbeat for 1.5 s, FAST_LIVENESS) for 3 s: forgotten. */
const GC_AFTER_MS = 3_000;

beforeAll(async () => {
  nats = await startNatsServer();
  const tenants = testTenantsFile();
  one = await startScheduler(nats.url, { replicaId: 'one', tenantsFile: tenants.file, nodeGcAfterMs: GC_AFTER_MS });
  two = await startScheduler(nats.url, { replicaId: 'two', tenantsFile: tenants.file, nodeGcAfterMs: GC_AFTER_MS });
  for (const s of [one, two]) Object.assign(s, { tokens: tenants.tokens, api: s.api.as(tenants.tokens['city-a']), operator: s.api.as(tenants.tokens.ops) });
  agents.push(await startAgent(nats.url, 'stays', [testNode('stay-1')], 'virtual'));
  await waitForNodes(one.operator, ['stay-1']);
});

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  await two?.close();
  await one?.close();
  await nats?.dispose();
});

const listed = async (api: ApiClient) => (await api.request<{ items: NodeView[] }>('GET', '/v1/nodes')).body.items.map((n) => n.id).sort();

async function consumerExists(agentId: string): Promise<boolean> {
  const nc = await connectNats(nats.url, 'node-gc-test');
  try {
    await (await jetstreamManager(nc)).consumers.info(STREAMS.assign, agentConsumerName(agentId));
    return true;
  } catch {
    return false;
  } finally {
    await nc.close();
  }
}

const pinned = (nodeId: string): JobSpecInput => ({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1024 }, durationSeconds: 0, constraints: { nodeSelector: { host: nodeId } } });

test('a node down for QY_NODE_GC_AFTER_MS is forgotten by every replica, with its agent’s consumer; its agent coming back brings it back', async () => {
  const node = testNode('gone-1', 'general', { labels: { host: 'gone-1' } });
  const first = await startAgent(nats.url, 'gone', [node], 'virtual');
  await waitForNodes(one.operator, ['gone-1']);
  await waitUntil(async () => ((await listed(two.operator)).includes('gone-1') ? true : undefined), 10_000, () => 'the standby never saw the node');
  expect(await consumerExists('gone')).toBe(true);

  // A node an operator cordoned (or drained) is kept: the operator removes it.
  const repair = await startAgent(nats.url, 'repair', [testNode('repair-1')], 'virtual');
  await waitForNodes(one.operator, ['repair-1']);
  expect((await one.operator.request('POST', '/v1/nodes/repair-1/cordon')).status).toBe(200);

  await Promise.all([first.stop(), repair.stop()]);
  await waitUntil(async () => ((await listed(one.operator)).includes('gone-1') ? undefined : true), 30_000, () => 'the leader never forgot the down node');
  await waitUntil(async () => ((await listed(two.operator)).includes('gone-1') ? undefined : true), 10_000, () => 'the standby kept the forgotten node');
  // Sweeps go on past the cordoned node's own threshold (a second beyond it, several sweeps): still there.
  const repaired = (await one.operator.request<NodeView>('GET', '/v1/nodes/repair-1')).body;
  await waitUntil(() => (Date.now() > Date.parse(repaired.lastHeartbeatAt!) + GC_AFTER_MS + 1_000 ? true : undefined), 30_000);
  expect(await listed(one.operator)).toEqual(['repair-1', 'stay-1']);
  expect((await one.operator.request<NodeView>('GET', '/v1/nodes/repair-1')).body).toMatchObject({ state: 'down', cordoned: true });
  expect(await consumerExists('repair')).toBe(true);
  expect(await consumerExists('gone')).toBe(false);
  expect((await one.operator.request('GET', '/v1/nodes/gone-1')).body).toMatchObject({ code: 'QY_ERR_NODE_NOT_FOUND' });
  const audit = await one.operator.request<{ items: AuditRecord[] }>('GET', '/v1/audit?action=node.forget&target=gone-1');
  expect(audit.body.items).toHaveLength(1);
  expect(audit.body.items[0]).toMatchObject({ actor: { kind: 'system', name: 'node-gc' }, outcome: 'ok', details: { agentId: 'gone' } });
  expect(audit.body.items[0].details!.downForMs as number).toBeGreaterThanOrEqual(GC_AFTER_MS);
  expect((await one.api.request<string>('GET', '/metrics')).body).toMatch(/^qy_nodes_forgotten_total\{pool="general",by="gc"\} 1$/m);

  // The agent starts again: its node registers, its consumer is made anew, and work reaches it.
  agents.push(await startAgent(nats.url, 'gone', [node], 'virtual'));
  await waitForNodes(one.operator, ['gone-1']);
  expect(await consumerExists('gone')).toBe(true);
  const id = await one.api.submit(pinned('gone-1'));
  const job = await one.api.waitFor(id, ['succeeded', 'failed'], 20_000);
  expect(job.state).toBe('succeeded');
  expect(job.placement?.[0].nodeId).toBe('gone-1');
});

/** A test of its own NATS server (its bucket and streams start empty), with a connection to it; both go after. */
async function onOwnNats(work: (url: string, nc: Awaited<ReturnType<typeof connectNats>>) => Promise<void>): Promise<void> {
  const server = await startNatsServer();
  const nc = await connectNats(server.url, 'node-gc-test');
  try {
    await work(server.url, nc);
  } finally {
    await nc.close();
    await server.dispose();
  }
}

/** A heartbeat of a node as an agent sends it. */
const heartbeatOf = (nodeId: string, atMs: number) => ({ type: 'heartbeat' as const, nodeId, atMs, cpuUtil: 0, memUsedBytes: 0, gpus: [], powerWatts: 100, greenShare: 0.5, powerSource: 'model' as const, running: [] });

test('DELETE /v1/nodes/:id removes a down node now, and refuses any other with 409 QY_ERR_NODE_NOT_REMOVABLE', () =>
  onOwnNats(async (url) => {
    // No garbage collection here: only the operator removes.
    const s = await startScheduler(url, { nodeGcAfterMs: 0 });
    const agent = await startAgent(url, 'manual', [testNode('manual-1')], 'virtual');
    try {
      await waitForNodes(s.operator, ['manual-1']);
      const ready = await s.operator.request('DELETE', '/v1/nodes/manual-1');
      expect(ready.status).toBe(409);
      expect(ready.body).toMatchObject({ code: 'QY_ERR_NODE_NOT_REMOVABLE', message: expect.stringContaining('it is ready; only a down node can be removed') });
      expect((await s.operator.request('DELETE', '/v1/nodes/nowhere')).body).toMatchObject({ code: 'QY_ERR_NODE_NOT_FOUND' });
      expect((await s.api.request('DELETE', '/v1/nodes/manual-1')).status).toBe(403);

      await agent.stop();
      await waitUntil(async () => ((await s.operator.request<NodeView>('GET', '/v1/nodes/manual-1')).body.state === 'down' ? true : undefined), 20_000, () => 'the node never went down');
      const removed = await s.operator.request<NodeView>('DELETE', '/v1/nodes/manual-1');
      expect(removed.body).toMatchObject({ id: 'manual-1', state: 'down' });
      expect(await listed(s.operator)).toEqual([]);
      expect((await s.operator.request('DELETE', '/v1/nodes/manual-1')).status).toBe(404);
      expect((await s.api.request<string>('GET', '/metrics')).body).toMatch(/^qy_nodes_forgotten_total\{pool="general",by="operator"\} 1$/m);
      const audit = await s.operator.request<{ items: AuditRecord[] }>('GET', '/v1/audit?action=node.remove');
      expect(audit.body.items.map((r) => [r.target, r.actor.kind])).toEqual([['manual-1', 'operator']]);
    } finally {
      await agent.stop().catch(() => undefined);
      await s.close();
    }
  }));

test('the time a node went down is stored: a restarted scheduler counts from it, not from its own start', () =>
  onOwnNats(async (url, nc) => {
    // What a scheduler stored after it saw `old-1` go down two minutes ago, written by the registry as it does
    // (`live-1` registered and never seen down).
    const kv = await openBucket(nc, 'nodes', 1);
    const earlier = new NodeRegistry(kv, silentLog);
    const wentSilentMs = Date.now() - 130_000;
    for (const id of ['old-1', 'live-1']) await earlier.register({ type: 'register', v: 1, agentId: id, node: testNode(id) }, wentSilentMs);
    earlier.heartbeat(heartbeatOf('live-1', Date.now()), Date.now());
    expect(earlier.sweep(Date.now(), 3_000, 10_000).map((e) => e.id)).toEqual(['old-1']);
    await earlier.persistDownTime(earlier.entries.get('old-1')!);

    const s = await startScheduler(url, { nodeGcAfterMs: 60_000 });
    try {
      // Forgotten once it is down again here (QY_DOWN_AFTER_MS of silence), not 60 s after this start.
      await waitUntil(async () => ((await listed(s.operator)).includes('old-1') ? undefined : true), 20_000, () => 'old-1 was not forgotten');
      expect(await listed(s.operator)).toEqual(['live-1']);
      expect((await s.operator.request<NodeView>('GET', '/v1/nodes/live-1')).body.state).toBe('down');
      expect((await kv.get('old-1'))?.operation).not.toBe('PUT');
    } finally {
      await s.close();
    }
  }));

test('a node heard from again gets its stored down time cleared, so a later restart does not count from it', () =>
  onOwnNats(async (_url, nc) => {
    const kv = await openBucket(nc, 'nodes', 1);
    const storedDown = async () => (await kv.get('back-1'))?.json<{ downSinceMs?: number }>().downSinceMs;
    const registry = new NodeRegistry(kv, silentLog);
    await registry.register({ type: 'register', v: 1, agentId: 'back', node: testNode('back-1') }, 1_000);
    // Silent past down-after: it goes down, and the leader stores since when.
    expect(registry.sweep(20_000, 3_000, 10_000).map((e) => e.id)).toEqual(['back-1']);
    const entry = registry.entries.get('back-1')!;
    await registry.persistDownTime(entry);
    expect(await storedDown()).toBe(1_000);
    // A heartbeat brings it back (no registration): the stored time goes too.
    expect(registry.heartbeat(heartbeatOf('back-1', 21_000), 21_000)).toBe(true);
    expect(entry.downSinceMs).toBeUndefined();
    await registry.persistDownTime(entry);
    expect(await storedDown()).toBeUndefined();
    // Down again later: counted from the new silence.
    registry.sweep(40_000, 3_000, 10_000);
    expect(entry.downSinceMs).toBe(21_000);
  }));

test('QY_NODE_GC_AFTER_MS must be 0 or at least QY_DOWN_AFTER_MS', () => {
  expect(() => loadSchedulerConfig({ QY_NODE_GC_AFTER_MS: '5000', QY_DOWN_AFTER_MS: '10000' })).toThrow(/QY_NODE_GC_AFTER_MS must be 0 \(never\) or not smaller than QY_DOWN_AFTER_MS/);
  expect(loadSchedulerConfig({ QY_NODE_GC_AFTER_MS: '0' }).nodeGcAfterMs).toBe(0);
  expect(loadSchedulerConfig({}).nodeGcAfterMs).toBe(86_400_000);
});
