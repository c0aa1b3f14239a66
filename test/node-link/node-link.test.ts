import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { NodeLink, WORK_WARM_UP, warmUpWorkParser, type HeartbeatBody, type WorkOutcome } from '../../src/node-link/node-link';
import { PROTOCOL_VERSION, REGISTRATION_ERROR_CODES, STREAMS, agentConsumerName, agentWorkSchema, subjects, type AgentWork, type Assignment, type CancelOrder, type Heartbeat, type LogReply, type Registration, type StatusReport } from '../../src/protocol';
import { JetStreamPublisher } from '../../src/store/js-publisher';
import { connectNats, ensureAgentConsumer, ensureStreams } from '../../src/store/nats';
import type { JetStreamManager } from '@nats-io/jetstream';
import { waitUntil } from '../helpers/api';
import { silentLog, testNode } from '../helpers/stack';

/**
 * NodeLink on its own against a real nats-server, with the scheduler's side played by hand: what goes on
 * the wire is what agents and the Kubernetes bridge both send, since both speak through it.
 */
const AGENT = 'nl';
let nats: LocalNatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let link: NodeLink;
const registrations: Registration[] = [];
const heartbeats: Heartbeat[] = [];
const work: AgentWork[] = [];
/** What onWork answers per job id, one answer per delivery (then 'ack'). */
const answers = new Map<string, (WorkOutcome | 'throw')[]>([
  ['later', ['retry']],
  ['boom', ['throw']],
]);

const body = (): HeartbeatBody => ({ cpuUtil: 0.25, memUsedBytes: 1024, gpus: [], powerWatts: 120, greenShare: 0.5, powerSource: 'model', running: [] });

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats(nats.url, 'scheduler-by-hand');
  jsm = await ensureStreams(nc, { replicas: 1, duplicateWindowMs: 60_000 });
  await ensureAgentConsumer(jsm, AGENT);
  nc.subscribe(subjects.register('*'), {
    callback: (_err, msg) => {
      const reg = msg.json<Registration>();
      registrations.push(reg);
      const reply =
        reg.node.id === 'refused-node'
          ? { ok: false, code: REGISTRATION_ERROR_CODES.refused, message: 'not this spec' }
          : { ok: true, heartbeatIntervalMs: 900, nodeState: 'ready', downAfterMs: 8_000 };
      msg.respond(JSON.stringify(reply));
    },
  });
  nc.subscribe(subjects.heartbeat('*'), {
    callback: (_err, msg) => {
      heartbeats.push(msg.json<Heartbeat>());
    },
  });
  await nc.flush();
  link = new NodeLink({
    agentId: AGENT,
    natsUrl: nats.url,
    connectionName: 'qy-test-node-link',
    log: silentLog,
    heartbeatIntervalMs: 10_000,
    // A node that is not ready sends no heartbeat.
    heartbeat: (nodeId) => (nodeId === 'quiet' ? undefined : body()),
    onWork: async (w) => {
      work.push(w);
      const next = answers.get(w.jobId)?.shift() ?? 'ack';
      if (next === 'throw') throw new Error('not now');
      return next;
    },
    onLogRequest: async (nodeId, req) => ({ ok: true, text: `${nodeId} ${req.attemptId}/${req.taskIndex}`, truncated: false }),
    onReregisterDue: () => undefined,
  });
  await link.connect();
});

afterAll(async () => {
  await link?.stopIntake();
  await link?.close();
  await nc?.close();
  await nats?.dispose();
});

describe('NodeLink against a real nats-server', () => {
  test('a registration carries the protocol version and agent id; the reply sets the heartbeat interval and the down threshold', async () => {
    expect(link.heartbeatIntervalMs).toBe(10_000);
    expect(link.downAfterMs).toBeUndefined();
    // No down threshold known yet: nothing is stale.
    expect(link.isStale(Date.now() - 3_600_000)).toBe(false);
    expect(await link.register(testNode('refused-node'))).toEqual({ outcome: 'refused', code: REGISTRATION_ERROR_CODES.refused, message: 'not this spec' });
    expect(link.heartbeatIntervalMs).toBe(10_000);
    expect(await link.register(testNode('n1'))).toEqual({ outcome: 'ok', nodeState: 'ready' });
    await link.registerUntilAccepted(testNode('n2'));
    expect(registrations.map((r) => [r.type, r.v, r.agentId, r.node.id])).toEqual([
      ['register', PROTOCOL_VERSION, AGENT, 'refused-node'],
      ['register', PROTOCOL_VERSION, AGENT, 'n1'],
      ['register', PROTOCOL_VERSION, AGENT, 'n2'],
    ]);
    expect(link.heartbeatIntervalMs).toBe(900);
    expect(link.downAfterMs).toBe(8_000);
  });

  test('the stale-work rule: only work sent before contact began and older than half the down threshold', () => {
    expect(link.isStale(Date.now() - 60_000)).toBe(true);
    expect(link.isStale(Date.now() - 1_000)).toBe(false);
    expect(link.isStale(Date.now() + 10)).toBe(false);
  });

  test('heartbeats: every served node at its own phase of the interval, not one burst; none for a node without a body', async () => {
    link.serve(['n1', 'n2', 'quiet']);
    await link.run();
    await waitUntil(() => (['n1', 'n2'].every((id) => heartbeats.filter((h) => h.nodeId === id).length >= 4) ? true : undefined), 30_000, () => `heartbeats: ${JSON.stringify(heartbeats.map((h) => [h.nodeId, h.atMs]))}`);
    expect(heartbeats.some((h) => h.nodeId === 'quiet')).toBe(false);
    expect(heartbeats[0]).toMatchObject({ type: 'heartbeat', ...body() });
    // The first round sends every node at once (none had sent one); after it, each keeps its own phase.
    const later = (id: string) => heartbeats.filter((h) => h.nodeId === id).slice(1).map((h) => h.atMs);
    const n1 = later('n1');
    expect(later('n2').some((atMs) => !n1.includes(atMs))).toBe(true);
  });

  test('work: the term fence drops a deposed leader\'s work, unreadable work is dropped, retries and failures come again, and everything ends acknowledged', async () => {
    const publisher = new JetStreamPublisher(nc);
    const assign = (jobId: string, term: number): Assignment => ({
      type: 'assign',
      jobId,
      attemptId: `${jobId}-a1`,
      nodeId: 'n1',
      tenant: 'city-a',
      tasks: [{ taskIndex: 0, nodeId: 'n1', cpuMillis: 100, memBytes: 1024, gpuIndices: [], gpuMilliEach: 0, extended: {} }],
      hosts: ['n1'],
      dataClass: 'public',
      sandbox: false,
      term,
      atMs: Date.now(),
    });
    const cancel: CancelOrder = { type: 'cancel', jobId: 'current', attemptId: 'current-a1', nodeId: 'n1', taskIndexes: [0], reason: 'user', graceMs: 0, term: 5, atMs: Date.now() };
    for (const message of [assign('current', 5), assign('ghost', 4), { type: 'nonsense' }, assign('later', 5), assign('boom', 5), cancel]) {
      await publisher.publish(subjects.assign(AGENT, 'n1'), JSON.stringify(message));
    }
    publisher.close();
    await waitUntil(async () => {
      const info = await jsm.consumers.info(STREAMS.assign, agentConsumerName(AGENT));
      return info.num_pending === 0 && info.num_ack_pending === 0 && work.length >= 6 ? true : undefined;
    }, 30_000, () => `work seen: ${JSON.stringify(work.map((w) => [w.type, w.jobId]))}`);
    // 'later' asked to come back once, 'boom' failed once: each was delivered twice. The ghost never reached the owner.
    expect(work.map((w) => `${w.type} ${w.jobId}`).sort()).toEqual(['assign boom', 'assign boom', 'assign current', 'assign later', 'assign later', 'cancel current']);
    // A work-queue stream keeps nothing once every message is acknowledged or terminated.
    expect((await jsm.streams.info(STREAMS.assign)).state.messages).toBe(0);
  });

  test('a status report is stored in the job log on the node\'s status subject', async () => {
    const before = Date.now();
    await link.report('n1', 'current', 'current-a1', 0, { state: 'failed', exitCode: 3, reason: 'exit 3' });
    const stored = await jsm.streams.getMessage(STREAMS.jobs, { last_by_subj: subjects.status('n1') });
    const report = stored!.json<StatusReport>();
    expect(report).toMatchObject({ type: 'status', nodeId: 'n1', jobId: 'current', attemptId: 'current-a1', taskIndex: 0, state: 'failed', exitCode: 3, reason: 'exit 3' });
    expect(report.atMs).toBeGreaterThanOrEqual(before);
  });

  test('log requests are answered for served nodes only; a bad request gets a reason', async () => {
    const ask = async (nodeId: string, data: string) => (await nc.request(subjects.log(nodeId), data, { timeout: 2_000 })).json<LogReply>();
    expect(await ask('n2', JSON.stringify({ jobId: 'current', attemptId: 'current-a1', taskIndex: 0, maxBytes: 100 }))).toEqual({ ok: true, text: 'n2 current-a1/0', truncated: false });
    expect(await ask('n1', 'not json')).toEqual({ ok: false, message: 'request is not JSON' });
    expect(await ask('n1', JSON.stringify({ jobId: 'current' }))).toEqual({ ok: false, message: 'invalid log request' });
    link.serve(['n1']);
    await expect(ask('n2', JSON.stringify({ jobId: 'current', attemptId: 'current-a1', taskIndex: 0, maxBytes: 100 }))).rejects.toThrow();
  });

  test('after close, a report is refused instead of retried for ever', async () => {
    await link.stopIntake();
    await link.close();
    await expect(link.report('n1', 'current', 'current-a1', 0, { state: 'running' })).rejects.toThrow('status publisher stopped');
  });
});

test('the work parser’s warm-up (run before an agent takes work) holds a valid message of every kind of work', () => {
  // Every kind the union knows (a new kind of work must get a sample too), and each sample valid, or its parser would not be compiled.
  expect(WORK_WARM_UP.map((w) => w.type).sort()).toEqual(agentWorkSchema.options.map((o) => o.shape.type.value).sort());
  expect(warmUpWorkParser()).toBe(WORK_WARM_UP.length);
});
