import { afterEach, describe, expect, test } from 'vitest';
import { LiveCarbon, parseHeaderLines, readingOf } from '../../src/green/live-carbon';
import { startNatsServer } from '../../harness/nats-server';
import { waitUntil } from '../../harness/wait';
import { connectNats } from '../../src/store/nats';
import { subjects } from '../../src/protocol';
import { startJsonServer, type JsonRequest } from '../helpers/json-server';
import { ManualClock } from '../helpers/manual-clock';
import { silentLog } from '../helpers/stack';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const T0 = 1_790_000_000_000;
const MIN = 60_000;

/** A loopback feed at `/carbon` answering each request as `answer` says; counts requests. */
async function feed(answer: (request: JsonRequest) => { status?: number; body: unknown }): Promise<{ url: string; requests: () => number }> {
  const server = await startJsonServer(answer);
  cleanups.push(server.close);
  return { url: `${server.url}/carbon`, requests: () => server.requests().length };
}

describe('live carbon feed', () => {
  test('a polled URL: failures retry after 1, 2, 4 s, then a reading is in force until it is older than the stale limit', async () => {
    const clock = new ManualClock(T0);
    const f = await feed(({ n }) => (n <= 3 ? { status: 503, body: {} } : { status: 200, body: { gPerKwh: 123, atMs: T0 + 7_000 } }));
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

  test("a provider's own answer is a reading: National Grid's half-hour in force (actual, else forecast), Electricity Maps' latest", () => {
    const at = (iso: string) => Date.parse(iso);
    const now = at('2026-03-01T12:40:00Z');
    const halfHours = [
      { from: '2026-03-01T12:00Z', to: '2026-03-01T12:30Z', intensity: { forecast: 210, actual: 204, index: 'moderate' } },
      { from: '2026-03-01T12:30Z', to: '2026-03-01T13:00Z', intensity: { forecast: 190, actual: null, index: 'moderate' } },
      { from: '2026-03-01T13:00Z', to: '2026-03-01T13:30Z', intensity: { forecast: 150, actual: null, index: 'low' } },
    ];
    // /intensity, /intensity/{from}/fw24h: the half-hour begun last, its forecast while its actual is not known.
    expect(readingOf({ data: halfHours }, now)).toEqual({ gPerKwh: 190, atMs: at('2026-03-01T12:30Z') });
    expect(readingOf({ data: halfHours }, at('2026-03-01T12:29:59Z'))).toEqual({ gPerKwh: 204, atMs: at('2026-03-01T12:00Z') });
    // Only future half-hours (this clock behind the provider's): the earliest.
    expect(readingOf({ data: halfHours.slice(1) }, at('2026-03-01T12:00:00Z'))).toEqual({ gPerKwh: 190, atMs: at('2026-03-01T12:30Z') });
    // A region: /regional/regionid/N (a list of one region), /regional/intensity/…/regionid/N (the region).
    const region = { regionid: 13, shortname: 'London', data: halfHours };
    expect(readingOf({ data: [region] }, now)).toEqual({ gPerKwh: 190, atMs: at('2026-03-01T12:30Z') });
    expect(readingOf({ data: region }, now)).toEqual({ gPerKwh: 190, atMs: at('2026-03-01T12:30Z') });
    // Electricity Maps: the value of the hour its datetime names.
    const em = { zone: 'DE', carbonIntensity: 302, datetime: '2026-03-01T12:00:00.000Z', updatedAt: '2026-03-01T12:38:11.002Z', emissionFactorType: 'lifecycle', isEstimated: true };
    expect(readingOf(em, now)).toEqual({ gPerKwh: 302, atMs: at('2026-03-01T12:00Z') });
    // The own shape, with and without its time.
    expect(readingOf({ gPerKwh: 88 }, now)).toEqual({ gPerKwh: 88, atMs: now });
    expect(readingOf({ gPerKwh: 88, atMs: now - 1 }, now)).toEqual({ gPerKwh: 88, atMs: now - 1 });
    // What is none: no value anywhere, a time that is not one, a value out of range, another shape.
    expect(readingOf({ data: [{ from: '2026-03-01T12:00Z', intensity: { forecast: null, actual: null } }] }, now)).toBeUndefined();
    expect(readingOf({ ...em, datetime: 'noon' }, now)).toBeUndefined();
    expect(readingOf({ ...em, carbonIntensity: -4 }, now)).toBeUndefined();
    expect(readingOf({ data: [{ ...halfHours[0], intensity: { forecast: 90_000 } }] }, now)).toBeUndefined();
    expect(readingOf({ data: [] }, now)).toBeUndefined();
    expect(readingOf({ data: [{ from: '2026-03-01T12:00Z', regions: [] }] }, now)).toBeUndefined();
    expect(readingOf('302', now)).toBeUndefined();
  });

  test("a polled provider that wants a token gets the headers file's headers; its answer is taken as it is", async () => {
    const clock = new ManualClock(Date.parse('2026-03-01T12:40:00Z'));
    const f = await feed(({ headers }) =>
      headers['auth-token'] === 's3cret' && headers.accept === 'application/json'
        ? { status: 200, body: { zone: 'DE', carbonIntensity: 302, datetime: '2026-03-01T12:00:00.000Z' } }
        : { status: 401, body: { error: 'no token' } },
    );
    const headers = parseHeaderLines('# Electricity Maps, zone DE\nAuth-Token:  s3cret \n\n', 'headers');
    expect(headers).toEqual({ 'auth-token': 's3cret' });
    const live = new LiveCarbon({ url: f.url, headers, pollMs: 5 * MIN, staleMs: 60 * MIN, clock, log: silentLog });
    cleanups.push(() => live.stop());
    live.start();
    await waitUntil(() => live.fresh(clock.now()), 10_000);
    expect(live.fresh(clock.now())).toEqual({ gPerKwh: 302, atMs: Date.parse('2026-03-01T12:00Z'), via: 'http' });
    expect(live.ageMs(clock.now())).toBe(40 * MIN);
  });

  test('a headers file: each line that is not "Name: value" is named, and an empty file refused', () => {
    expect(parseHeaderLines('authorization: Bearer abc: def\r\nx-zone: DE', 'h')).toEqual({ authorization: 'Bearer abc: def', 'x-zone': 'DE' });
    expect(() => parseHeaderLines('auth-token: a\njust a token\n', 'h.txt')).toThrow('h.txt:2: expected a header "Name: value"');
    expect(() => parseHeaderLines(': value', 'h.txt')).toThrow('h.txt:1: expected');
    expect(() => parseHeaderLines('bad name: value', 'h.txt')).toThrow('h.txt:1: expected');
    expect(() => parseHeaderLines('# only a comment\n\n', 'h.txt')).toThrow('h.txt: no header in it');
  });
});
