import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { LiveCarbon } from '../../src/green/live-carbon';
import { startNatsServer } from '../../harness/nats-server';
import { waitUntil } from '../../harness/wait';
import { connectNats } from '../../src/store/nats';
import { subjects } from '../../src/protocol';
import { ManualClock } from '../helpers/manual-clock';
import { silentLog } from '../helpers/stack';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const T0 = 1_790_000_000_000;
const MIN = 60_000;

/** A loopback feed answering with whatever `answer` says at each request; counts requests. */
async function feed(answer: (n: number) => { status: number; body: unknown }): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const server: Server = createServer((_req, res) => {
    const a = answer(++n);
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/carbon`, requests: () => n };
}

describe('live carbon feed', () => {
  test('a polled URL: failures retry after 1, 2, 4 s, then a reading is in force until it is older than the stale limit', async () => {
    const clock = new ManualClock(T0);
    const f = await feed((n) => (n <= 3 ? { status: 503, body: {} } : { status: 200, body: { gPerKwh: 123, atMs: T0 + 7_000 } }));
    const live = new LiveCarbon({ url: f.url, pollMs: 5 * MIN, staleMs: 30 * MIN, clock, log: silentLog });
    cleanups.push(() => live.stop());
    live.start();
    await waitUntil(() => (f.requests() === 1 ? true : undefined), 10_000);
    // Each failed poll is answered before its retry is scheduled; the retries come 1 s, 2 s, 4 s apart.
    for (const [requests, at] of [[2, 1_000], [3, 3_000], [4, 7_000]] as const) {
      await waitUntil(() => (clock.pending() > 0 ? true : undefined), 10_000);
      clock.advanceTo(T0 + at - 1);
      expect(f.requests()).toBe(requests - 1);
      clock.advanceTo(T0 + at);
      await waitUntil(() => (f.requests() === requests ? true : undefined), 10_000);
    }
    await waitUntil(() => (live.fresh(clock.now()) ? true : undefined), 10_000);
    expect(live.fresh(clock.now())).toEqual({ gPerKwh: 123, atMs: T0 + 7_000, via: 'http' });
    expect(live.ageMs(T0 + 7_000 + 10 * MIN)).toBe(10 * MIN);
    expect(live.fresh(T0 + 7_000 + 30 * MIN)).toBeDefined();
    expect(live.fresh(T0 + 7_000 + 30 * MIN + 1)).toBeUndefined();
  });

  test('readings published on a NATS subject; what is not a reading is refused, an older reading does not replace a newer one', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const clock = new ManualClock(T0);
    const nc = await connectNats(nats.url, 'test-feed');
    cleanups.push(() => nc.close());
    const live = new LiveCarbon({ subject: subjects.carbon, pollMs: 5 * MIN, staleMs: 30 * MIN, clock, log: silentLog });
    cleanups.push(() => live.stop());
    live.start(nc);
    await nc.flush();
    const publish = (body: unknown) => nc.publish(subjects.carbon, JSON.stringify(body));
    publish({ gPerKwh: 'high' });
    publish({ gPerKwh: 80, atMs: T0 - 5 * MIN });
    publish({ gPerKwh: 200, atMs: T0 - 10 * MIN });
    publish({ gPerKwh: 95 });
    await nc.flush();
    await waitUntil(() => (live.fresh(T0)?.gPerKwh === 95 ? true : undefined), 10_000, () => JSON.stringify(live.fresh(T0)));
    expect(live.fresh(T0)).toEqual({ gPerKwh: 95, atMs: T0, via: 'nats' });
    expect(live.accept({ gPerKwh: -1 }, 'nats')).toBe(false);
    expect(live.accept({ gPerKwh: 90, atMs: T0 - MIN }, 'nats')).toBe(true);
    expect(live.fresh(T0)?.gPerKwh).toBe(95);
  });
});
