import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { DASHBOARDS } from '../../dashboards/definitions';
import { startInfluxd, type LocalInfluxd } from '../../harness/influxd';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { freePort } from '../../harness/ports';
import { LONG_TERM_POLICY, TelemetryWriter, type TelemetrySettings } from '../../src/telemetry/influx-writer';
import { waitUntil } from '../helpers/api';
import { silentLog, startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

let influx: LocalInfluxd;
beforeAll(async () => {
  influx = await startInfluxd();
});
afterAll(async () => {
  await influx?.dispose();
});

const settings = (url: string, database: string, extra: Partial<TelemetrySettings> = {}): TelemetrySettings => ({
  url,
  database,
  rawRetention: '7d',
  longTermRetention: '1820d',
  maxBuffered: 10_000,
  batchSize: 500,
  flushIntervalMs: 100,
  ...extra,
});

describe('telemetry in a real InfluxDB 1.x', () => {
  test('points are written in batches and read back with InfluxQL; the hourly downsampling works', async () => {
    const counts = { written: 0, dropped: 0 };
    const writer = new TelemetryWriter(settings(influx.url, 'unit'), { written: (n) => (counts.written += n), dropped: (n) => (counts.dropped += n) }, silentLog);
    writer.start();
    const now = Date.now();
    for (let i = 0; i < 1_200; i++) {
      writer.push({ measurement: 'pool_power', tags: { pool: i % 2 ? 'general' : 'intelligent' }, fields: { power_watts: 1000 + i, green_watts: 400 }, timestamp: new Date(now - 60_000 + i) });
    }
    await waitUntil(() => (counts.written === 1_200 ? true : undefined), 10_000);
    const rows = await writer.query<{ count: number; pool: string }>('SELECT count("power_watts") FROM "raw"."pool_power" GROUP BY "pool"');
    expect(rows.map((r) => r.count)).toEqual([600, 600]);
    // What the continuous query does every hour, run now: the dashboard's long-range panel reads its output.
    await writer.query(TelemetryWriter.continuousQuery('unit').replace('GROUP BY', `WHERE time > now() - 2h GROUP BY`));
    const hourly = await writer.query<{ power_watts: number }>(`SELECT * FROM "${LONG_TERM_POLICY}"."pool_power_1h"`);
    expect(hourly.length).toBeGreaterThanOrEqual(2);
    const cqs = await writer.query<{ name: string }>('SHOW CONTINUOUS QUERIES');
    expect(JSON.stringify(cqs)).toMatch(/pool_power_1h/);
    const panel = DASHBOARDS.flatMap((d) => d.panels).flatMap((p) => p.queries).find((q) => q.influx)!;
    const panelRows = await writer.query(panel.expr.replace('$timeFilter', 'time > now() - 6h').replace('$__interval', '1h'));
    expect(panelRows.length).toBeGreaterThan(0);
    await writer.stop();
    expect(counts.dropped).toBe(0);
  });

  test('a down InfluxDB costs nothing but telemetry: pushes return at once and overflow is counted', async () => {
    const counts = { written: 0, dropped: 0 };
    const writer = new TelemetryWriter(settings(`http://127.0.0.1:${await freePort()}`, 'nowhere', { maxBuffered: 100 }), { written: (n) => (counts.written += n), dropped: (n) => (counts.dropped += n) }, silentLog);
    writer.start();
    // push is synchronous: nothing waits for InfluxDB.
    for (let i = 0; i < 250; i++) writer.push({ measurement: 'node_telemetry', tags: { node: 'n' }, fields: { power_watts: i } });
    expect(writer.buffered).toBe(100);
    expect(counts.dropped).toBe(150);
    await writer.flush();
    expect(counts.written).toBe(0);
    expect(writer.buffered).toBe(100);
    await writer.stop();
  });

  describe('the scheduler with QY_INFLUX_URL', () => {
    let nats: LocalNatsServer;
    let s: TestScheduler;
    let agent: Agent;
    beforeAll(async () => {
      nats = await startNatsServer();
      s = await startScheduler(nats.url, { influxUrl: influx.url, influxDatabase: 'qingyang', influxPoolPowerIntervalMs: 200 });
      agent = await startAgent(nats.url, 'inf', [testNode('inf-1'), testNode('inf-2', 'intelligent')], 'virtual');
      await waitForNodes(s.operator, ['inf-1', 'inf-2']);
    });
    afterAll(async () => {
      await s?.close();
      await agent?.stop();
      await nats?.dispose();
    });

    test('heartbeats, pool power and job lifecycle events arrive in InfluxDB', async () => {
      const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 1000, memBytes: 1024 }, durationSeconds: 0 });
      await s.api.waitFor(id, ['succeeded']);
      const writer = s.scheduler.telemetry!;
      const events = await waitUntil(async () => {
        const rows = await writer.query<{ event: string; job_id: string; time: Date }>(`SELECT * FROM "raw"."job_events" WHERE "job_id" = '${id}'`);
        return rows.length >= 4 ? rows : undefined;
      }, 10_000);
      const at = Object.fromEntries(events.map((e) => [e.event, new Date(e.time).getTime()]));
      expect(Object.keys(at).sort()).toEqual(['finished', 'placed', 'started', 'submitted']);
      expect(at.submitted <= at.placed && at.placed <= at.started && at.started <= at.finished).toBe(true);
      const nodes = await writer.query<{ node: string; power_watts: number }>('SELECT last("power_watts") AS power_watts FROM "raw"."node_telemetry" GROUP BY "node"');
      expect(nodes.map((n) => n.node).sort()).toEqual(['inf-1', 'inf-2']);
      expect(nodes.every((n) => n.power_watts > 0)).toBe(true);
      const pools = await waitUntil(async () => {
        const rows = await writer.query<{ pool: string }>('SELECT last("power_watts") FROM "raw"."pool_power" GROUP BY "pool"');
        return rows.length >= 2 ? rows : undefined;
      }, 10_000);
      expect(pools.map((p) => p.pool).sort()).toEqual(['general', 'intelligent']);
    });
  });
});
