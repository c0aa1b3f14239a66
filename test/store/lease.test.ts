import type { KV } from '@nats-io/kv';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
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

/** A KV that counts the standby's looks at the lease (each `get`): the observation window of "it did not take over". */
function countingGets(target: KV): { kv: KV; looks: () => number } {
  let looks = 0;
  const kv = new Proxy(target, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown;
      if (prop === 'get') return (...args: Parameters<KV['get']>) => (looks++, t.get(...args));
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  return { kv, looks: () => looks };
}

test('when the leader dies, the standby takes over once the lease has stood unchanged for the lease duration on its own clock, with a higher term', async () => {
  const events: string[] = [];
  const a = elector('a', 'crash', events);
  await a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  // b's clock moves only when the test moves it: whether the lease has expired is decided on that clock alone.
  let bNowMs = 1_000_000;
  const counted = countingGets(kv);
  const b = new LeaderElector(counted.kv, 'crash', { holder: 'b', address: 'http://b' }, timings, { elected: (term) => events.push(`b elected ${term}`), deposed: (why) => events.push(`b deposed: ${why}`) }, log, () => bNowMs);
  await b.start();
  expect(b.leader).toEqual({ holder: 'a', address: 'http://a', term: 1 });
  // a dies without a word: its timers stop, its lease is not given up; it stops leading at its renew deadline.
  (a as unknown as { stopped: boolean }).stopped = true;
  clearTimeout((a as unknown as { timer: NodeJS.Timeout }).timer);
  await waitUntil(() => (events.includes('a deposed: could not renew the lease for 500 ms') ? true : undefined), 5000, () => events.join('; '));
  const looksAfter = async (n: number) => {
    const from = counted.looks();
    await waitUntil(() => (counted.looks() >= from + n ? true : undefined), 5000, () => `b looked ${counted.looks() - from} of ${n} times`);
  };
  // Several looks at the same revision on a clock that has not moved: b still waits.
  await looksAfter(3);
  expect(b.isLeader).toBe(false);
  // One millisecond short of the lease duration since b saw that revision: still waiting.
  bNowMs += timings.leaseDurationMs - 1;
  await looksAfter(3);
  expect(b.isLeader).toBe(false);
  bNowMs += 1;
  await waitUntil(() => (b.isLeader ? true : undefined), 5000);
  expect(events).toEqual(['a elected 1', 'a deposed: could not renew the lease for 500 ms', 'b elected 2']);
  expect(b.term).toBe(2);
  expect(b.leader).toEqual({ holder: 'b', address: 'http://b', term: 2 });
  await b.stop();
});

test('a leader that stops gives the lease up at once', async () => {
  const events: string[] = [];
  const a = elector('a', 'clean', events);
  a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  const b = elector('b', 'clean', events);
  // b has looked once and seen a lead (start resolves after the first look).
  await b.start();
  expect(b.leader?.holder).toBe('a');
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

test('a leader whose renewal landed but whose reply was lost keeps leading, and is not deposed by its own write', async () => {
  // Under overload a renewal can time out here after the server applied it; the next one, at the old revision,
  // is refused. That used to read as a takeover: the only replica deposed itself and rebuilt, pool by pool.
  let loseNext = false;
  let lost = false;
  let renewedAfter = 0;
  const lossy = new Proxy(kv, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown;
      if (prop === 'update')
        return async (...args: Parameters<KV['update']>) => {
          const revision = await t.update(...args);
          if (loseNext) {
            loseNext = false;
            lost = true;
            throw new Error('timeout');
          }
          if (lost) renewedAfter++;
          return revision;
        };
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  const events: string[] = [];
  // A renew deadline far beyond the retry period: this test is about the lost reply, not about the clock.
  const a = new LeaderElector(lossy, 'lost-reply', { holder: 'a', address: 'http://a' }, { leaseDurationMs: 18_000, renewDeadlineMs: 10_000, retryPeriodMs: 50 }, { elected: (term) => events.push(`a elected ${term}`), deposed: (why) => events.push(`a deposed: ${why}`) }, log);
  await a.start();
  await waitUntil(() => (a.isLeader ? true : undefined), 5000);
  loseNext = true;
  await waitUntil(() => (renewedAfter >= 3 || !a.isLeader ? true : undefined), 10_000, () => `${renewedAfter} renewals after the lost reply; ${events.join('; ')}`);
  expect(events).toEqual(['a elected 1']);
  expect(a.isLeader).toBe(true);
  expect(a.term).toBe(1);
  // A write by another replica is still a takeover.
  await kv.put('lost-reply', JSON.stringify({ holder: 'x', address: 'http://x', term: 7 }));
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
