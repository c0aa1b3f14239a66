import { afterEach, describe, expect, test } from 'vitest';
import { startNatsServer } from '../../harness/nats-server';
import type { JobSpecInput } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { observeCycles, startAgent, startScheduler, testNode, waitForNodes, waitForPendingReason, type TestScheduler } from '../helpers/stack';

const MiB = 1024 ** 2;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/** NATS, a scheduler with these settings, and one agent serving `nodes`. */
async function stack(overrides: Record<string, unknown>, nodes: ReturnType<typeof testNode>[]): Promise<TestScheduler> {
  const nats = await startNatsServer();
  cleanups.push(() => nats.dispose());
  const s = await startScheduler(nats.url, overrides);
  cleanups.push(() => s.close());
  const agent = await startAgent(nats.url, 'pol', nodes);
  cleanups.push(() => agent.stop());
  await waitForNodes(s.operator, nodes.map((n) => n.id));
  return s;
}

const oneCore = (command: string[]): JobSpecInput => ({ pool: 'general', resources: { cpuMillis: 1000, memBytes: MiB }, command });
const fourCores = [testNode('small', 'general', { capacity: { cpuMillis: 4000, memBytes: 4096 * MiB } })];

describe('fair share between tenants', () => {
  test('a freed core goes to the tenant with the smaller share, though the other asked first', async () => {
    const s = await stack({ agingMs: 3_600_000 }, fourCores);
    const a = s.api;
    const b = s.as('city-b');
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await a.submit(oneCore(['sleep', '30'])));
    await Promise.all(held.map((id) => a.waitFor(id, ['running'])));
    const aWaits = await a.submit(oneCore(['true']));
    const bWaits = await b.submit(oneCore(['sleep', '30']));
    // Both wait, tried by a cycle, before the test frees a core: then the order alone decides.
    await waitForPendingReason(a, aWaits);
    await waitForPendingReason(b, bWaits);
    await a.request('DELETE', `/v1/jobs/${held[0]}`);
    await b.waitFor(bWaits, ['running'], 10_000);
    // No core is left: city-a's job waits, whatever the next cycles do.
    await observeCycles(s, 'general');
    expect((await a.job(aWaits)).state).toBe('pending');
    expect((await a.job(aWaits)).pendingReason).toMatch(/^0\/1 nodes fit: 1 insufficient cpu$/);
  });

  test('aging: a job that has waited long goes first even from the tenant with the larger share', async () => {
    const agingMs = 100;
    const s = await stack({ agingMs }, fourCores);
    const a = s.api;
    const b = s.as('city-b');
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await a.submit(oneCore(['sleep', '30'])));
    await Promise.all(held.map((id) => a.waitFor(id, ['running'])));
    const aWaits = await a.submit(oneCore(['sleep', '30']));
    const aSubmittedMs = Date.parse((await a.job(aWaits)).submittedAt);
    // city-a holds 4 of 4 cores (share 1) and city-b none (share 0): city-a's job goes first only if it has
    // waited more than agingMs longer than city-b's, so city-b submits once 10 × agingMs have passed.
    await waitUntil(() => (Date.now() > aSubmittedMs + 10 * agingMs ? true : undefined), 5_000);
    const bWaits = await b.submit(oneCore(['sleep', '30']));
    await waitForPendingReason(a, aWaits);
    await waitForPendingReason(b, bWaits);
    await a.request('DELETE', `/v1/jobs/${held[0]}`);
    await a.waitFor(aWaits, ['running'], 10_000);
    // The freed core went to city-a's old job; no core is left, so city-b's job waits through the next cycles.
    await observeCycles(s, 'general');
    expect((await b.job(bWaits)).state).toBe('pending');
  });
});

describe('preemption storm guard', () => {
  test('a job preempted as often as allowed this hour is not preempted again', async () => {
    const s = await stack({ preemptionMaxPerHour: 1 }, [testNode('solo')]);
    const a = s.api;
    const b = s.as('city-b');
    const whole = { pool: 'general' as const, resources: { cpuMillis: 8000, memBytes: MiB } };
    const victim = await a.submit({ ...whole, priorityClass: 'batch', command: ['sleep', '30'] });
    await a.waitFor(victim, ['running']);
    const first = await b.submit({ ...whole, priorityClass: 'urgent', command: ['sleep', '1'] });
    expect((await b.waitFor(first, ['succeeded'], 15_000)).preempting).toEqual([victim]);
    await a.waitFor(victim, ['running'], 10_000);
    const second = await b.submit({ ...whole, priorityClass: 'urgent', command: ['true'] });
    // Tried by a cycle and left waiting; then the guard has several more cycles in which to preempt, and must not.
    await waitForPendingReason(b, second);
    await observeCycles(s, 'general', 5);
    expect((await b.job(second)).state).toBe('pending');
    expect((await b.job(second)).preempting).toBeUndefined();
    const v = await a.job(victim);
    expect(v.state).toBe('running');
    expect(v.attempts).toBe(2);
    await a.request('DELETE', `/v1/jobs/${victim}`);
    expect((await b.waitFor(second, ['succeeded'], 15_000)).state).toBe('succeeded');
  });
});

describe('EASY backfill in the super pool', () => {
  test('the head job gets a reservation; a short job runs before it, a long one is held back', async () => {
    const s = await stack({}, ['h1', 'h2', 'h3', 'h4'].map((id) => testNode(id, 'super')));
    const a = s.api;
    const gang = (tasks: number, walltimeSeconds: number, command: string[]): JobSpecInput => ({ pool: 'super', tasks, walltimeSeconds, resources: { cpuMillis: 1000, memBytes: MiB }, command });
    const running = await a.submit(gang(3, 60, ['sleep', '30']));
    await a.waitFor(running, ['running']);
    const head = await a.submit(gang(4, 10, ['true']));
    const short = await a.submit(gang(1, 5, ['true']));
    const long = await a.submit(gang(1, 600, ['true']));
    expect((await a.waitFor(short, ['succeeded'], 10_000)).state).toBe('succeeded');
    await observeCycles(s, 'super');
    const headView = await a.job(head);
    expect(headView.state).toBe('pending');
    expect(headView.pendingReason).toMatch(/^reserved to start at \d{4}-\d\d-\d\dT[\d:.]+Z when running jobs reach their walltime \(EASY backfill\); 0\/4 nodes fit/);
    const longView = await a.job(long);
    expect(longView.state).toBe('pending');
    expect(longView.pendingReason).toMatch(new RegExp(`^held back by EASY backfill: it would delay ${head}, reserved to start at `));
    await a.request('DELETE', `/v1/jobs/${running}`);
    expect((await a.waitFor(head, ['succeeded'], 15_000)).state).toBe('succeeded');
    expect((await a.waitFor(long, ['succeeded'], 15_000)).state).toBe('succeeded');
  });
});
