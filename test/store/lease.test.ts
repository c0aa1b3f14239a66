import type { KV } from '@nats-io/kv';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../src/local/nats-server';
import { connectNats, openBucket } from '../../src/store/nats';
import { LeaderElector, assertSafeTimings } from '../../src/store/lease';
import { createLogger } from '../../src/telemetry/logger';
import { waitUntil } from '../helpers/api';

const log = createLogger({ name: 'lease-test', level: 'silent' });
const timings = { leaseDurationMs: 900, renewDeadlineMs: 500, retryPeriodMs: 100 };
let nats: LocalNatsServer;
let kv: KV;
let close: () => Promise<void>;

beforeAll(async () => {
  nats = await startNatsServer();
  const nc = await connectNats(nats.url, 'lease-test', log);
  kv = await openBucket(nc, 'leases', 1);
  close = () => nc.close();
});

afterAll(async () => {
  await close?.();
  await nats?.dispose();
});

function elector(name: string, key: string, events: string[]) {
  return new LeaderElector(kv, key, { holder: name, address: `http://${name}` }, timings, { elected: (term) => events.push(`${name} elected ${term}`), deposed: (why) => events.push(`${name} deposed: ${why}`) }, log);
}

test('timings where a deposed leader might still lead when another takes over are refused', () => {
  expect(() => assertSafeTimings({ leaseDurationMs: 1000, renewDeadlineMs: 1000, retryPeriodMs: 100 })).toThrow(/lease timings/);
  expect(() => assertSafeTimings(timings)).not.toThrow();
});

test('one of two replicas leads; when it dies the other takes over after the lease, with a higher term, never both at once', async () => {
  const events: string[] = [];
  const a = elector('a', 'crash', events);
  a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  const b = elector('b', 'crash', events);
  b.start();
  let both = false;
  const watch = setInterval(() => (both ||= a.isLeader && b.isLeader), 5);
  await new Promise((r) => setTimeout(r, 1500));
  expect(b.isLeader).toBe(false);
  expect(b.leader).toEqual({ holder: 'a', address: 'http://a', term: 1 });
  // a dies without a word: its timers stop, its lease is not given up.
  const diedAt = Date.now();
  (a as unknown as { stopped: boolean }).stopped = true;
  clearTimeout((a as unknown as { timer: NodeJS.Timeout }).timer);
  await waitUntil(() => (b.isLeader ? true : undefined), 5000);
  const takeover = Date.now() - diedAt;
  clearInterval(watch);
  // a stops leading at its renew deadline (it cannot renew), before b may take over.
  expect(events).toEqual(['a elected 1', 'a deposed: could not renew the lease for 500 ms', 'b elected 2']);
  expect(both).toBe(false);
  expect(takeover).toBeGreaterThanOrEqual(timings.leaseDurationMs - timings.retryPeriodMs);
  expect(b.term).toBe(2);
  await b.stop();
});

test('a leader that stops gives the lease up at once', async () => {
  const events: string[] = [];
  const a = elector('a', 'clean', events);
  a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  const b = elector('b', 'clean', events);
  b.start();
  await new Promise((r) => setTimeout(r, 300));
  const seen: unknown[] = [];
  const watch = await kv.watch({ key: 'clean' });
  void (async () => {
    for await (const e of watch) seen.push(e.json());
  })();
  await a.stop();
  // The lease is marked given up, so b takes it at its next look rather than waiting it out; terms still rise.
  await waitUntil(() => (b.isLeader ? true : undefined), 5000);
  watch.stop();
  expect(seen).toContainEqual(expect.objectContaining({ holder: 'a', released: true, term: 1 }));
  expect(events).toEqual(['a elected 1', 'b elected 2']);
  await b.stop();
});

test('a leader whose lease is overwritten steps down at its next renewal', async () => {
  const events: string[] = [];
  const a = elector('a', 'stolen', events);
  a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  await kv.put('stolen', JSON.stringify({ holder: 'x', address: 'http://x', term: 9 }));
  await waitUntil(() => (a.isLeader ? undefined : true), 5000);
  expect(events).toEqual(['a elected 1', 'a deposed: the lease was taken over']);
  await a.stop();
});

test('a leader whose clock says the renew deadline passed steps down when asked, before its timer fires (a paused process)', async () => {
  const events: string[] = [];
  let skewMs = 0;
  const a = new LeaderElector(kv, 'paused', { holder: 'a', address: 'http://a' }, timings, { elected: (term) => events.push(`a elected ${term}`), deposed: (why) => events.push(`a deposed: ${why}`) }, log, () => Date.now() + skewMs);
  a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  expect(a.confirm()).toBe(true);
  // As if the process had slept past its deadline: the clock moved, no timer has run yet.
  skewMs = timings.renewDeadlineMs + 50;
  expect(a.confirm()).toBe(false);
  expect(a.isLeader).toBe(false);
  expect(events[1]).toMatch(/^a deposed: the renew deadline passed/);
  await a.stop();
});
