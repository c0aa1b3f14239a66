import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Agent } from '../../agents/agent';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startTcpProxy, type TcpProxy } from '../../harness/tcp-proxy';
import { connectNats } from '../../src/store/nats';
import { PROTOCOL_VERSION, registrationReplySchema, statusReportSchema, subjects, type NodeSpec, type NodeView, type StatusReport } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { startScheduler, testAgentOptions, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

/**
 * A node partitioned from NATS: its agent fences itself (stops its task) before the scheduler declares
 * the node down and runs the job elsewhere, so the two attempts never overlap. The liveness settings
 * leave seconds between the fence (1.5 s + 1 s grace) and the requeue (8 s): no tight margins.
 */
const FENCE = { afterMs: 1_500, graceMs: 1_000 };
const DOWN_AFTER_MS = 8_000;

let nats: LocalNatsServer;
let proxy: TcpProxy;
let s: TestScheduler;
const agents: Agent[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

function agentFor(natsUrl: string, spec: NodeSpec, fence = FENCE): Agent {
  return new Agent(
    testAgentOptions(natsUrl, `${spec.id}-agent`, [spec], {
      runner: new ProcessRunner(fence.graceMs, { isolation: null }),
      enforcement: { cgroups: 'none', reason: 'test', isolation: 'none', fence },
      fence,
    }),
  );
}

beforeAll(async () => {
  nats = await startNatsServer();
  proxy = await startTcpProxy({ port: nats.port });
  s = await startScheduler(nats.url, { suspectAfterMs: 2_000, downAfterMs: DOWN_AFTER_MS });
});

afterAll(async () => {
  await s?.close();
  for (const a of agents) await a.stop().catch(() => undefined);
  for (const c of cleanups) await c().catch(() => undefined);
  await proxy?.close();
  await nats?.dispose();
});

test('a partitioned node fences its task before the job runs elsewhere: the two attempts never overlap', { timeout: 90_000 }, async () => {
  // Node `cut-1` reaches NATS only through the proxy; the job lands there (the only node at first).
  const cut = agentFor(`nats://127.0.0.1:${proxy.port}`, testNode('cut-1', 'general', { labels: { role: 'p' } }));
  await cut.start();
  agents.push(cut);
  await waitForNodes(s.operator, ['cut-1']);
  const node = (await s.operator.request<NodeView>('GET', '/v1/nodes/cut-1')).body;
  expect(node.enforcement).toEqual({ cgroups: 'none', reason: 'test', isolation: 'none', fence: FENCE });

  // Status reports of cut-1 as stored, seen by a direct connection.
  const watcher = await connectNats(nats.url, 'partition-watcher');
  cleanups.push(() => watcher.close());
  const reports: StatusReport[] = [];
  watcher.subscribe(subjects.status('cut-1'), { callback: (_e, m) => {
      reports.push(statusReportSchema.parse(m.json()));
    },
  });

  // The task ignores SIGTERM, so only the SIGKILL after the grace stops it; it stamps the time every 50 ms.
  const file = join(mkdtempSync(join(tmpdir(), 'qy-partition-')), 'stamps');
  const loop = `trap "" TERM; while :; do echo "$QY_ATTEMPT_ID $(date +%s%3N)" >> ${file}; sleep 0.05; done`;
  const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 16 * 1024 ** 2 }, command: ['sh', '-c', loop], constraints: { nodeSelector: { role: 'p' } } });
  const first = await s.api.waitFor(id, ['running']);
  expect(first.placement?.[0].nodeId).toBe('cut-1');
  // A second node, reached directly, where the job can run next.
  const other = agentFor(nats.url, testNode('ok-1', 'general', { labels: { role: 'p' } }));
  await other.start();
  agents.push(other);
  await waitForNodes(s.operator, ['ok-1']);
  await waitUntil(() => (readFileSync(file, 'utf8').split('\n').length > 5 ? true : undefined), 10_000, () => 'the task never stamped');

  // Partition: the proxy drops every byte (TCP stays up: only the agent's own probe can notice).
  proxy.cut('blackhole');
  const second = await waitUntil(async () => {
    const job = await s.api.job(id);
    return job.attemptId !== first.attemptId && job.state === 'running' ? job : undefined;
  }, 40_000, () => 'the job never ran again');
  expect(second.placement?.[0].nodeId).toBe('ok-1');
  await waitUntil(() => (readFileSync(file, 'utf8').includes(second.attemptId!) ? true : undefined), 10_000, () => 'the second attempt never stamped');
  await new Promise((r) => setTimeout(r, 500));

  // Heal: the fenced agent reports its task lost, reason `fenced`.
  proxy.heal();
  const fenced = await waitUntil(() => reports.find((r) => r.attemptId === first.attemptId && r.state === 'lost'), 30_000, () => `no lost report: ${JSON.stringify(reports)}`);
  expect(fenced.reason).toBe('fenced');
  await s.api.request('DELETE', `/v1/jobs/${id}`);
  await s.api.waitFor(id, ['cancelled']);

  const stamps = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([attempt, ms]) => ({ attempt, ms: Number(ms) }));
  const of = (attempt: string) => stamps.filter((x) => x.attempt === attempt).map((x) => x.ms);
  const firstLast = Math.max(...of(first.attemptId!));
  const secondFirst = Math.min(...of(second.attemptId!));
  console.log(`partition: attempt 1 wrote ${of(first.attemptId!).length} stamps, its last ${secondFirst - firstLast} ms before attempt 2's first (${of(second.attemptId!).length} stamps)`);
  expect(of(first.attemptId!).length).toBeGreaterThan(5);
  expect(of(second.attemptId!).length).toBeGreaterThan(0);
  expect(firstLast).toBeLessThan(secondFirst); // never overlap
  // Nothing of attempt 1 was written after attempt 2 began, anywhere in the file.
  const firstIndexOfSecond = stamps.findIndex((x) => x.attempt === second.attemptId);
  expect(stamps.slice(firstIndexOfSecond).every((x) => x.attempt === second.attemptId)).toBe(true);
});

test('the scheduler refuses an agent whose fence would fire after it requeues', async () => {
  const nc = await connectNats(nats.url, 'unsafe-agent');
  cleanups.push(() => nc.close());
  const spec = { ...testNode('unsafe-1'), enforcement: { cgroups: 'none' as const, isolation: 'none' as const, fence: { afterMs: 7_000, graceMs: 1_000 } } };
  const msg = await nc.request(subjects.register('unsafe-1'), JSON.stringify({ type: 'register', v: PROTOCOL_VERSION, agentId: 'unsafe-agent', node: spec }), { timeout: 5_000 });
  const reply = registrationReplySchema.parse(msg.json());
  expect(reply).toMatchObject({ ok: false, code: 'QY_ERR_REGISTRATION_REFUSED', message: expect.stringMatching(/^unsafe fence: .*7000 \+ 1000 ms.*QY_DOWN_AFTER_MS \(8000 ms\)/) });
  const nodes = (await s.operator.request<{ items: { id: string }[] }>('GET', '/v1/nodes')).body.items.map((n) => n.id);
  expect(nodes).not.toContain('unsafe-1');
});
