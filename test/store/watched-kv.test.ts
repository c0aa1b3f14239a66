import type { KV } from '@nats-io/kv';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { z } from 'zod';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { connectNats, openBucket } from '../../src/store/nats';
import { WatchedKv } from '../../src/store/watched-kv';
import { createLogger } from '../../src/telemetry/logger';
import { waitUntil } from '../helpers/api';

const log = createLogger({ name: 'watched-kv-test', level: 'silent' });
const schema = z.object({ cpuMillis: z.number().int().min(0) });
let nats: LocalNatsServer;
let kv: KV;
let close: () => Promise<void>;

beforeAll(async () => {
  nats = await startNatsServer();
  const nc = await connectNats(nats.url, 'watched-kv-test', log);
  kv = await openBucket(nc, 'quotas', 1);
  close = () => nc.close();
});

afterAll(async () => {
  await close?.();
  await nats?.dispose();
});

test('every stored key is loaded; a value that does not match the schema is named, not loaded', async () => {
  const bucket = new WatchedKv(kv, schema, log, 'quotas');
  await bucket.put('beijing', { cpuMillis: 4000 });
  await kv.put('shanghai', JSON.stringify({ cpuMillis: -1 }));
  await kv.put('chongqing', 'not json at all');
  await kv.put('gone', JSON.stringify({ cpuMillis: 1 }));
  await kv.delete('gone');
  const invalid: string[] = [];
  expect([...(await bucket.loadAll((key) => invalid.push(key)))]).toEqual([['beijing', { cpuMillis: 4000 }]]);
  expect(invalid.sort()).toEqual(['chongqing', 'shanghai']);
});

test('following sees the values written after it started, in order, and skips invalid ones and deletes', async () => {
  const bucket = new WatchedKv(kv, schema, log, 'quotas');
  const seen: [string, number][] = [];
  await bucket.follow((key, value) => seen.push([key, value.cpuMillis]));
  await kv.put('guangzhou', 'not json at all');
  await kv.put('guangzhou', JSON.stringify({ cpuMillis: 'many' }));
  await kv.delete('beijing');
  await bucket.put('guangzhou', { cpuMillis: 8000 });
  await waitUntil(() => (seen.length > 0 ? true : undefined), 5000);
  expect(seen).toEqual([['guangzhou', 8000]]);

  // A second follow replaces the first: each change reaches the new callback only.
  const again: string[] = [];
  await bucket.follow((key) => again.push(key));
  await bucket.put('chengdu', { cpuMillis: 1 });
  await waitUntil(() => (again.length > 0 ? true : undefined), 5000);
  expect(again).toEqual(['chengdu']);
  expect(seen).toEqual([['guangzhou', 8000]]);
  bucket.stop();
});
