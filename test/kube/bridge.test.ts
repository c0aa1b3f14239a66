import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { KubeBridge } from '../../src/kube/bridge';
import { loadKubeBridgeConfig } from '../../src/kube/config';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import type { JobView, NodeView } from '../../src/protocol';
import { waitUntil, type ApiClient } from '../helpers/api';
import { silentLog, startScheduler, type TestScheduler } from '../helpers/stack';
import { openTestCluster, requestsTo, uniqueSuffix, type TestCluster } from './cluster';
import type { KObject } from './fake-apiserver';
import { grantedBy, permissionOf } from './rbac';

/**
 * The bridge against a real scheduler and nats-server, and a Kubernetes API: the fake API server, or a real
 * cluster when QY_KUBECONFIG is set (tests needing fake nodes, the simulated kubelet or fault injection are
 * skipped there). Tests run in order and share the cluster, as a day in the life of a kube pool.
 */
let nats: LocalNatsServer;
let s: TestScheduler;
let cluster: TestCluster;
let bridge: KubeBridge;
let tenant: ApiClient;
let ops: ApiClient;
const ns = `qy-test-${uniqueSuffix()}`;
const WAIT_MS = 20_000;

const fakeOnly = () => cluster.fake!;
const isReal = !!process.env.QY_KUBECONFIG;

function startBridge(): Promise<KubeBridge> {
  const config = loadKubeBridgeConfig({}, { natsUrl: nats.url, schedulerUrl: s.url, token: s.tokens['kube-bridge'], cluster: 'test', syncIntervalMs: 200 });
  const b = new KubeBridge(config, cluster.kubeconfig, silentLog);
  return b.start().then(() => b);
}

/** Waits until the bridge has looked at pending jobs `n` more times. */
async function pollRounds(n: number): Promise<void> {
  const target = bridge.pendingPolls + n;
  await waitUntil(() => (bridge.pendingPolls >= target ? true : undefined), 30_000, () => `the bridge did not poll ${n} times`);
}

function kubeNode(name: string, labels: Record<string, string>, allocatable: Record<string, string>, ready = true): KObject {
  return { metadata: { name, labels }, spec: {}, status: { allocatable, capacity: allocatable, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } };
}

function pod(name: string, opts: { cpu?: string; mem?: string; gpus?: number; annotations?: Record<string, string>; labels?: Record<string, string>; schedulerName?: string; nodeName?: string } = {}): KObject {
  const requests: Record<string, string> = { cpu: opts.cpu ?? '500m', memory: opts.mem ?? '256Mi' };
  if (opts.gpus) requests['nvidia.com/gpu'] = String(opts.gpus);
  return {
    metadata: { name, namespace: ns, labels: opts.labels ?? {}, annotations: opts.annotations ?? {} },
    spec: { schedulerName: opts.schedulerName ?? 'qingyang-scheduler', nodeName: opts.nodeName, restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'], resources: { requests, limits: opts.gpus ? { 'nvidia.com/gpu': String(opts.gpus) } : undefined } }] },
  };
}

async function jobOf(podName: string): Promise<JobView> {
  return waitUntil(async () => {
    const res = await tenant.request<{ items: JobView[] }>('GET', '/v1/jobs?limit=1000');
    return res.body.items.find((j) => j.name === `${ns}/${podName}`);
  }, WAIT_MS, () => `no job for pod ${podName}`);
}

async function jobsNamed(podName: string): Promise<JobView[]> {
  const res = await tenant.request<{ items: JobView[] }>('GET', '/v1/jobs?limit=1000');
  return res.body.items.filter((j) => j.name === `${ns}/${podName}`);
}

async function node(id: string): Promise<NodeView | undefined> {
  const res = await ops.request<NodeView>('GET', `/v1/nodes/${id}`);
  return res.status === 200 ? res.body : undefined;
}

async function waitForPod(name: string, check: (p: KObject | undefined) => boolean, what: string): Promise<KObject | undefined> {
  let last: KObject | undefined;
  await waitUntil(async () => {
    last = await cluster.getPod(ns, name);
    return check(last) ? true : undefined;
  }, WAIT_MS, () => `pod ${name} ${what}: ${JSON.stringify(last?.spec && { nodeName: (last.spec as { nodeName?: string }).nodeName, status: last.status })}`);
  return last;
}

const nodeNameOf = (p: KObject | undefined) => (p?.spec as { nodeName?: string } | undefined)?.nodeName;
const scheduledCondition = (p: KObject | undefined) => ((p?.status as { conditions?: { type: string; status: string; reason?: string; message?: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === 'PodScheduled');

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url, {}, { operators: ['ops', { name: 'kube-bridge', actAsTenants: true }], tenants: [{ name: 'city-a', requestsPerSecond: 100_000 }] });
  tenant = s.api;
  ops = s.operator;
  cluster = await openTestCluster();
  await cluster.createNamespace(ns, { 'qingyang.cn/tenant': 'city-a', 'qingyang.cn/pool': 'general' });
  if (cluster.fake) {
    const f = cluster.fake;
    f.put('Node', kubeNode('gen-1.example', { 'qingyang.cn/pool': 'general', 'topology.kubernetes.io/rack': 'r1', 'topology.kubernetes.io/zone': 'z1', 'qingyang.cn/security-level': 'sensitive' }, { cpu: '8', memory: '16Gi', pods: '110' }));
    f.put('Node', kubeNode('gen-2', { 'qingyang.cn/pool': 'general', 'qingyang.cn/rack': 'r2' }, { cpu: '8', memory: '16Gi', 'ephemeral-storage': '100Gi' }));
    f.put('Node', kubeNode('gpu-1', { 'qingyang.cn/pool': 'intelligent', 'nvidia.com/gpu.product': 'A800', 'nvidia.com/gpu.memory': '81920' }, { cpu: '64', memory: '512Gi', 'nvidia.com/gpu': '8', 'rdma/hca': '4' }));
    f.put('Node', kubeNode('flaky', { 'qingyang.cn/pool': 'super' }, { cpu: '4', memory: '8Gi' }));
    f.put('Node', kubeNode('not-ours', {}, { cpu: '4', memory: '8Gi' }));
    // A pod of another scheduler holds 1.5 cores and 2 GiB of gen-2.
    f.put('Pod', { ...pod('foreign', { cpu: '1500m', mem: '2Gi', schedulerName: 'default-scheduler', nodeName: 'gen-2' }), status: { phase: 'Running' } });
  }
  bridge = await startBridge();
});

afterAll(async () => {
  await bridge?.stop();
  await cluster?.cleanup();
  await s?.close();
  await nats?.dispose();
});

describe.skipIf(isReal)('nodes', () => {
  test('labelled nodes register with pool, rack, zone, security level, GPUs; allocatable is what foreign pods leave', async () => {
    const gen1 = await waitUntil(() => node('gen-1_example').then((n) => (n?.state === 'ready' ? n : undefined)), WAIT_MS);
    expect(gen1).toMatchObject({ pool: 'general', rack: 'r1', zone: 'z1', securityLevel: 'sensitive', allocatable: { cpuMillis: 8000, memBytes: 16 * 1024 ** 3, gpus: 0 } });
    const gen2 = await waitUntil(() => node('gen-2').then((n) => (n?.state === 'ready' ? n : undefined)), WAIT_MS);
    expect(gen2).toMatchObject({ rack: 'r2', zone: 'default', securityLevel: 'internal', allocatable: { cpuMillis: 6500, memBytes: 14 * 1024 ** 3 } });
    const gpu = await waitUntil(() => node('gpu-1'), WAIT_MS);
    expect(gpu).toMatchObject({ pool: 'intelligent', gpuModel: 'A800', allocatable: { gpus: 8 } });
    expect(await node('not-ours')).toBeUndefined();
  });

  test('a foreign pod that ends gives its capacity back (re-registration)', async () => {
    fakeOnly().finishPod(ns, 'foreign', 0);
    await waitUntil(() => node('gen-2').then((n) => (n?.allocatable.cpuMillis === 8000 ? true : undefined)), WAIT_MS);
  });

  test('spec.unschedulable cordons the node; clearing it uncordons', async () => {
    fakeOnly().modify('Node', 'gen-2', undefined, (n) => ((n.spec as Record<string, unknown>).unschedulable = true));
    await waitUntil(() => node('gen-2').then((n) => (n?.cordoned && n.state === 'cordoned' ? true : undefined)), WAIT_MS);
    fakeOnly().modify('Node', 'gen-2', undefined, (n) => ((n.spec as Record<string, unknown>).unschedulable = false));
    await waitUntil(() => node('gen-2').then((n) => (!n?.cordoned && n?.state === 'ready' ? true : undefined)), WAIT_MS);
  });

  test('a NotReady node stops heartbeating and goes down; Ready again brings it back', async () => {
    await waitUntil(() => node('flaky').then((n) => (n?.state === 'ready' ? true : undefined)), WAIT_MS);
    const setReady = (ready: boolean) => fakeOnly().modify('Node', 'flaky', undefined, (n) => ((n.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: ready ? 'True' : 'False' }]));
    setReady(false);
    await waitUntil(() => node('flaky').then((n) => (n?.state === 'down' ? true : undefined)), WAIT_MS);
    setReady(true);
    await waitUntil(() => node('flaky').then((n) => (n?.state === 'ready' ? true : undefined)), WAIT_MS);
  });
});

describe.skipIf(isReal)('pods', () => {
  test('a pod is submitted as its namespace’s tenant, bound through Binding, and its exit is the job’s', async () => {
    await cluster.createPod(pod('solo'));
    await cluster.createPod(pod('crash'));
    const bound = await waitForPod('solo', (p) => !!nodeNameOf(p), 'not bound');
    expect(['gen-1.example', 'gen-2']).toContain(nodeNameOf(bound));
    const binding = requestsTo(fakeOnly(), 'POST', new RegExp(`/namespaces/${ns}/pods/solo/binding$`));
    expect(binding[0].body).toMatchObject({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'solo' }, target: { apiVersion: 'v1', kind: 'Node', name: nodeNameOf(bound) } });
    const job = await jobOf('solo');
    expect(job).toMatchObject({ tenant: 'city-a', pool: 'general', tasks: 1, resources: { cpuMillis: 500, memBytes: 256 * 1024 ** 2 } });
    await waitUntil(async () => ((await cluster.events(ns)).some((e) => e.reason === 'Scheduled' && (e.involvedObject as { name: string }).name === 'solo' && e.type === 'Normal') ? true : undefined), WAIT_MS, () => 'no Scheduled event for solo');
    fakeOnly().runPod(ns, 'solo');
    await tenant.waitFor(job.id, ['running']);
    fakeOnly().finishPod(ns, 'solo', 0);
    expect(await tenant.waitFor(job.id, ['succeeded'])).toMatchObject({ exitCode: 0 });

    await waitForPod('crash', (p) => !!nodeNameOf(p), 'not bound');
    const crash = await jobOf('crash');
    fakeOnly().runPod(ns, 'crash');
    fakeOnly().finishPod(ns, 'crash', 3);
    expect(await tenant.waitFor(crash.id, ['failed'])).toMatchObject({ exitCode: 3 });
  });

  test('a task\'s output is its pod\'s log, read through the API server: the tail, cut to the bytes asked for', async () => {
    await cluster.createPod(pod('talker'));
    await waitForPod('talker', (p) => !!nodeNameOf(p), 'not bound');
    const job = await jobOf('talker');
    fakeOnly().runPod(ns, 'talker');
    await tenant.waitFor(job.id, ['running']);
    const lines = Array.from({ length: 50 }, (_, i) => `line ${String(i).padStart(2, '0')}\n`);
    fakeOnly().writePodLog(ns, 'talker', 'main', lines.join(''));
    const whole = await tenant.request<{ text: string; truncated: boolean; taskIndex: number }>('GET', `/v1/jobs/${job.id}/log?task=0&bytes=4096`);
    expect(whole.status).toBe(200);
    expect(whole.body).toMatchObject({ text: lines.join(''), truncated: false, taskIndex: 0 });
    // 20 bytes: the last two lines (8 bytes each) and the end of the one before.
    const tail = await tenant.request<{ text: string; truncated: boolean }>('GET', `/v1/jobs/${job.id}/log?task=0&bytes=20`);
    expect(tail.body).toEqual(expect.objectContaining({ text: `${lines[47].slice(-4)}${lines[48]}${lines[49]}`, truncated: true }));
    const asked = requestsTo(fakeOnly(), 'GET', new RegExp(`/namespaces/${ns}/pods/talker/log$`));
    expect(asked.at(-1)!.query).toMatchObject({ container: 'main', tailLines: '21' });
    fakeOnly().finishPod(ns, 'talker', 0);
    await tenant.waitFor(job.id, ['succeeded']);
  });

  test('a gang waits for min-member pods, then is one job whose pods are all bound', async () => {
    const gang = { 'qingyang.cn/pod-group': 'train', 'qingyang.cn/min-member': '4' };
    for (const i of [0, 1, 2]) await cluster.createPod(pod(`train-${i}`, { cpu: '3', annotations: gang }));
    const waiting = await waitForPod('train-0', (p) => scheduledCondition(p)?.reason === 'WaitingForGang', 'not waiting for its gang');
    expect(scheduledCondition(waiting)?.message).toBe('pod group train has 3 of 4 pods');
    expect(await jobsNamed('train')).toEqual([]);
    await cluster.createPod(pod('train-3', { cpu: '3', annotations: gang }));
    for (const i of [0, 1, 2, 3]) await waitForPod(`train-${i}`, (p) => !!nodeNameOf(p), 'not bound');
    const job = await jobOf('train');
    expect(job.tasks).toBe(4);
    const placed = await tenant.job(job.id);
    // Task i is the i-th pod by name, bound to the node the scheduler chose for it.
    expect(placed.placement).toHaveLength(4);
    for (const [i, t] of (placed.placement ?? []).entries()) expect(nodeNameOf(await cluster.getPod(ns, `train-${i}`))).toBe(t.nodeId.replaceAll('_', '.'));
    for (const i of [0, 1, 2, 3]) fakeOnly().runPod(ns, `train-${i}`);
    await tenant.waitFor(job.id, ['running']);
    for (const i of [0, 1, 2, 3]) fakeOnly().finishPod(ns, `train-${i}`, 0);
    await tenant.waitFor(job.id, ['succeeded']);
  });

  test('a gang whose binding fails for one pod leaves no pod of it bound, and the attempt fails', async () => {
    const gang = { 'qingyang.cn/pod-group': 'broken', 'qingyang.cn/min-member': '4' };
    fakeOnly().failBinding(ns, 'broken-2', 403);
    for (const i of [0, 1, 2, 3]) await cluster.createPod(pod(`broken-${i}`, { cpu: '1', annotations: gang }));
    const job = await jobOf('broken');
    const failed = await tenant.waitFor(job.id, ['failed']);
    expect(failed.reason ?? '').toMatch(/binding failed: broken-2/);
    for (const i of [0, 1, 2, 3]) expect(nodeNameOf(await cluster.getPod(ns, `broken-${i}`))).toBeUndefined();
    // broken-2 still exists (it was never bound, so not deleted): the check above is about it, not about a missing pod.
    expect(await cluster.getPod(ns, 'broken-2')).toBeDefined();
    // The pods bound in the attempt were deleted (their controllers would recreate them); broken-2 says why it waits.
    const deleted = new Set(requestsTo(fakeOnly(), 'DELETE', /\/pods\/broken-\d$/).map((r) => r.path.split('/').pop()));
    expect([...deleted].sort()).toEqual(['broken-0', 'broken-1', 'broken-3']);
    const left = await waitForPod('broken-2', (p) => /binding failed/.test(scheduledCondition(p)?.message ?? ''), 'has no binding-failed condition');
    expect(scheduledCondition(left)).toMatchObject({ status: 'False', reason: 'Unschedulable' });
  });

  test('transient bind errors are retried', async () => {
    fakeOnly().failBinding(ns, 'flaky-bind', 503, 2);
    await cluster.createPod(pod('flaky-bind'));
    await waitForPod('flaky-bind', (p) => !!nodeNameOf(p), 'not bound after retries');
    expect(requestsTo(fakeOnly(), 'POST', /pods\/flaky-bind\/binding$/).length).toBe(3);
  });

  test('a pod that does not fit now shows the scheduler’s pending reason, with one FailedScheduling event', async () => {
    await cluster.createPod(pod('hog', { gpus: 8, cpu: '8', labels: { 'qingyang.cn/pool': 'intelligent' } }));
    await waitForPod('hog', (p) => !!nodeNameOf(p), 'not bound');
    fakeOnly().runPod(ns, 'hog');
    await cluster.createPod(pod('waiter', { gpus: 4, cpu: '4', labels: { 'qingyang.cn/pool': 'intelligent' } }));
    const job = await jobOf('waiter');
    const pending = await tenant.waitFor(job.id, ['pending']);
    const p = await waitForPod('waiter', (x) => scheduledCondition(x)?.message === pending.pendingReason, `does not show the pending reason ${pending.pendingReason}`);
    expect(scheduledCondition(p)).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(pending.pendingReason).toMatch(/gpu/i);
    const patch = requestsTo(fakeOnly(), 'PATCH', new RegExp(`/pods/waiter/status$`))[0];
    expect(patch.contentType).toBe('application/merge-patch+json');
    // Several looks at the unchanged reason later, still one event.
    await pollRounds(3);
    const events = (await cluster.events(ns)).filter((e) => (e.involvedObject as { name: string }).name === 'waiter' && e.reason === 'FailedScheduling');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'Warning', message: pending.pendingReason, reportingComponent: 'qingyang-scheduler', involvedObject: { kind: 'Pod', namespace: ns, name: 'waiter' } });
  });

  test('a restarted bridge finds its jobs again: no duplicate submission, bound pods still followed', async () => {
    const waiter = await jobOf('waiter');
    const hog = await jobOf('hog');
    await tenant.waitFor(hog.id, ['running']);
    await bridge.stop();
    bridge = await startBridge();
    // The new bridge has found its jobs (at start) and looked at the pending ones a few times.
    await pollRounds(3);
    expect((await jobsNamed('waiter')).map((j) => j.id)).toEqual([waiter.id]);
    expect((await jobsNamed('hog')).map((j) => j.id)).toEqual([hog.id]);
    // The waiter's unchanged reason is still on the pod: the new bridge does not repeat the event.
    const failedScheduling = (await cluster.events(ns)).filter((e) => (e.involvedObject as { name: string }).name === 'waiter' && e.reason === 'FailedScheduling');
    expect(failedScheduling).toHaveLength(1);
    // Cancelling the adopted running job deletes its pod; the waiter then gets the GPUs.
    expect((await tenant.request('DELETE', `/v1/jobs/${hog.id}`)).status).toBe(202);
    await waitForPod('hog', (p) => p === undefined, 'not deleted after its job was cancelled');
    await tenant.waitFor(hog.id, ['cancelled']);
    await waitForPod('waiter', (p) => nodeNameOf(p) === 'gpu-1', 'not bound once the GPUs were free');
  });

  test('cancelling a pending job deletes its pod; deleting a pod cancels its job', async () => {
    await cluster.createPod(pod('blocked', { gpus: 8, cpu: '1', labels: { 'qingyang.cn/pool': 'intelligent' } }));
    const blocked = await jobOf('blocked');
    await tenant.waitFor(blocked.id, ['pending']);
    expect((await tenant.request('DELETE', `/v1/jobs/${blocked.id}`)).status).toBe(202);
    await waitForPod('blocked', (p) => p === undefined, 'not deleted after its pending job was cancelled');

    const waiter = await jobOf('waiter');
    fakeOnly().runPod(ns, 'waiter');
    await tenant.waitFor(waiter.id, ['running']);
    await cluster.deletePod(ns, 'waiter');
    await tenant.waitFor(waiter.id, ['cancelled']);
  });

  test('a watch answered 410 Gone relists and carries on', async () => {
    const listsBefore = requestsTo(fakeOnly(), 'GET', /^\/api\/v1\/pods$/).filter((r) => r.query.watch !== 'true').length;
    fakeOnly().dropWatchesAndCompact(() => fakeOnly().put('Pod', { ...pod('after-gap'), status: { phase: 'Pending' } }));
    await waitForPod('after-gap', (p) => !!nodeNameOf(p), 'not bound after the relist');
    expect(requestsTo(fakeOnly(), 'GET', /^\/api\/v1\/pods$/).filter((r) => r.query.watch !== 'true').length).toBeGreaterThan(listsBefore);
  });
});

describe('bookmarks', () => {
  test.skipIf(isReal)('watches ask for bookmarks, and a broken watch resumes from the last one instead of relisting', async () => {
    const podWatches = () => requestsTo(fakeOnly(), 'GET', /^\/api\/v1\/pods$/).filter((r) => r.query.watch === 'true');
    expect(podWatches().length).toBeGreaterThan(0);
    expect(podWatches().every((r) => r.query.allowWatchBookmarks === 'true')).toBe(true);
    const listsBefore = requestsTo(fakeOnly(), 'GET', /^\/api\/v1\/pods$/).filter((r) => r.query.watch !== 'true').length;
    // The collection moves on without touching pods (the pods watch sees nothing), then a bookmark says how far.
    for (let i = 0; i < 3; i++) fakeOnly().put('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `${ns}-quiet-${i}` } });
    const bookmark = fakeOnly().sendBookmarks();
    fakeOnly().dropWatchesCompactingFirst(() => fakeOnly().put('Pod', { ...pod('after-bookmark'), status: { phase: 'Pending' } }));
    await waitForPod('after-bookmark', (p) => !!nodeNameOf(p), 'not bound after the watch resumed');
    expect(podWatches().some((r) => r.query.resourceVersion === String(bookmark))).toBe(true);
    expect(requestsTo(fakeOnly(), 'GET', /^\/api\/v1\/pods$/).filter((r) => r.query.watch !== 'true').length).toBe(listsBefore);
  });
});

describe('refusals', () => {
  test('a pod the scheduler refuses says why, once', async () => {
    // 500 cores: larger than any node of the pool (or, on a real cluster, no node of it at all).
    await cluster.createPod(pod('too-big', { cpu: '500' }));
    const p = await waitForPod('too-big', (x) => scheduledCondition(x)?.status === 'False', 'has no PodScheduled=False');
    expect(scheduledCondition(p)?.message).toMatch(/the scheduler refused the job/);
    // Several sync rounds later (reconciles run on the same interval as the polls), still one event.
    await pollRounds(3);
    const events = (await cluster.events(ns)).filter((e) => (e.involvedObject as { name: string }).name === 'too-big' && e.reason === 'FailedScheduling');
    expect(events).toHaveLength(1);
  });
});

describe('permissions', () => {
  // Last in the file: by now the run has made every kind of call the bridge makes.
  test.skipIf(isReal)('configs/kubernetes/rbac.yaml grants exactly the calls the bridge made against the API server in this run', () => {
    const made = new Set(fakeOnly().requests.map(permissionOf));
    const granted = grantedBy('configs/kubernetes/rbac.yaml');
    // A call made but not granted would be forbidden on a real cluster; a grant never used is more than the bridge needs.
    expect([...made].filter((p) => !granted.has(p)).sort()).toEqual([]);
    expect([...granted].filter((p) => !made.has(p)).sort()).toEqual([]);
  });
});
