import { afterEach, describe, expect, test } from 'vitest';
import { startNatsServer } from '../../harness/nats-server';
import { connectNats, openBucket } from '../../src/store/nats';
import { greenHistorySchema, subjects, type GreenHistory, type GreenSignalSource, type GreenView } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { silentLog, startScheduler } from '../helpers/stack';
import { GreenHistoryStore } from '../../src/store/green-history';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('a live carbon feed in the service', () => {
  test('readings on QY_CARBON_SUBJECT become the signal; /v1/pools, /v1/green and the metric show the feed and its age; a stale one falls back', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const s = await startScheduler(nats.url, { carbonSubject: subjects.carbon, carbonStaleMs: 3_600_000, carbonIntensityGPerKwh: 500 });
    cleanups.push(() => s.close());
    const pools = async () => (await s.operator.request<{ greenSignal: GreenSignalSource }>('GET', '/v1/pools')).body.greenSignal;
    // Configured, nothing heard yet: the signal has fallen back, and says so.
    expect(await pools()).toEqual({ source: 'green-share', liveStale: true });

    const nc = await connectNats(nats.url, 'test-feed');
    cleanups.push(() => nc.close());
    const now = Date.now();
    // A reading two hours old is past the stale limit: it is heard, and the signal still falls back.
    nc.publish(subjects.carbon, JSON.stringify({ gPerKwh: 10, atMs: now - 7_200_000 }));
    await waitUntil(async () => ((await pools()).liveAgeSeconds !== undefined ? true : undefined), 10_000);
    expect(await pools()).toMatchObject({ source: 'green-share', liveStale: true });
    expect((await pools()).liveAgeSeconds).toBeGreaterThanOrEqual(7_200);
    expect((await s.operator.request<{ signal: { gridGPerKwh: number } }>('GET', '/v1/green')).body.signal.gridGPerKwh).toBe(500);

    // A fresh one is the signal, for deferral and metering alike.
    nc.publish(subjects.carbon, JSON.stringify({ gPerKwh: 87, atMs: now - 60_000 }));
    await waitUntil(async () => ((await pools()).source === 'live' ? true : undefined), 10_000);
    const live = await pools();
    expect(live.liveStale).toBe(false);
    expect(live.liveAgeSeconds).toBeGreaterThanOrEqual(60);
    expect(live.liveAgeSeconds).toBeLessThan(7_200);
    const green = (await s.operator.request<{ signal: { source: string; gPerKwh: number; gridGPerKwh: number } }>('GET', '/v1/green')).body.signal;
    expect(green).toMatchObject({ source: 'live', gPerKwh: 87, gridGPerKwh: 87 });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(Number(/^qy_green_signal_age_seconds (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(60);
    // Each pool's booking share now: as configured (0.2, the GPU pool 0) before an hour of arrivals.
    expect([...metrics.matchAll(/^qy_green_deferral_share\{pool="(\w+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])])).toEqual([['general', 0.2], ['intelligent', 0], ['super', 0.2]]);
  });

  test('the signal observed survives a restart in qy-green: the leader stores it, a scheduler that starts replays it and trusts its errors at once', async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.dispose());
    const nc = await connectNats(nats.url, 'test-history');
    cleanups.push(() => nc.close());
    const kv = await openBucket(nc, 'green', 1);
    const stored = async () => {
      const entry = await kv.get('history');
      return entry && entry.length > 0 ? greenHistorySchema.parse(entry.json()) : undefined;
    };
    const green = async (s: { operator: { request<T>(m: string, p: string): Promise<{ body: T }> } }) => (await s.operator.request<GreenView>('GET', '/v1/green')).body.forecaster;
    const at12h = (f: GreenView['forecaster']) => f.errors.find((e) => e.aheadHours === 12)!.gPerKwh;
    // A step longer than the test: what is stored is what a replica stores as it takes up `general`.
    const options = { carbonSubject: subjects.carbon, greenStepMs: 600_000 };

    // What is stored is checked against its schema before it is replayed: neither JSON nor a newer version is.
    const historyStore = new GreenHistoryStore(kv, silentLog);
    expect(await historyStore.load()).toBeUndefined();
    for (const bad of ['not json', JSON.stringify({ v: 2, savedAtMs: 0, savedBy: 'x', points: [] })]) {
      await kv.put('history', bad);
      expect(await historyStore.load()).toBeUndefined();
    }
    await kv.delete('history');

    // A first scheduler, with nothing stored and no node to give the signal: cold, and it has nothing to store.
    const first = await startScheduler(nats.url, { ...options, replicaId: 'first' });
    cleanups.push(() => first.close());
    const cold = await green(first);
    expect(cold.observedSince).toBeUndefined();
    expect(at12h(cold)).toBeNull();
    expect(await (await fetch(`${first.url}/metrics`)).text()).not.toMatch(/^qy_green_forecast_error_g_per_kwh\{/m);
    await waitUntil(async () => ((await first.api.request<{ role: string }>('GET', '/readyz')).body.role === 'leader' ? true : undefined), 20_000);
    await first.close();
    cleanups.pop();
    expect(await stored()).toBeUndefined();

    // Eight days of a daily cycle stored (as a replica that ran that long would have): the next scheduler replays them.
    const now = Date.now();
    const points: [number, number][] = [];
    for (let t = now - 8 * 86_400_000 + 60_000; t < now - 60_000; t += 900_000) points.push([t, Math.round(250 + 150 * Math.sin((2 * Math.PI * t) / 86_400_000))]);
    const history: GreenHistory = { v: 1, savedAtMs: now, savedBy: 'earlier', points };
    await kv.put('history', JSON.stringify(history));
    const second = await startScheduler(nats.url, { ...options, replicaId: 'second' });
    cleanups.push(() => second.close());
    const warm = await green(second);
    expect(warm.observedSince).toBe(new Date(points[0][0]).toISOString());
    expect(at12h(warm)).not.toBeNull();
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(Number(/^qy_green_forecast_error_g_per_kwh\{ahead_hours="12"\} (\S+)$/m.exec(metrics)?.[1])).toBe(at12h(warm));
    // It goes on storing, the replayed days included.
    const secondSaved = await waitUntil(async () => ((await stored())?.savedBy === 'second' ? stored() : undefined), 20_000);
    expect(secondSaved!.points.slice(0, points.length)).toEqual(points);
  });
});
