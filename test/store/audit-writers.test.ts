import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { AuditLog, verifyChain } from '../../src/store/audit-log';
import { connectNats, ensureStreams } from '../../src/store/nats';
import { createLogger } from '../../src/telemetry/logger';

const log = createLogger({ name: 'audit-test', level: 'silent' });
let nats: LocalNatsServer;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});

afterAll(async () => {
  for (const close of closers) await close();
  await nats?.dispose();
});

async function writer(name: string): Promise<AuditLog> {
  const nc = await connectNats(nats.url, name, log);
  closers.push(() => nc.close());
  await ensureStreams(nc, { replicas: 1, duplicateWindowMs: 60_000 });
  const audit = new AuditLog(nc, log);
  await audit.init();
  return audit;
}

test('two replicas appending at once keep one unbroken chain: every record once, in order', async () => {
  const [a, b] = [await writer('a'), await writer('b')];
  const appends: Promise<void>[] = [];
  for (let i = 0; i < 60; i++) {
    appends.push(a.append({ actor: { kind: 'operator', name: 'a' }, action: 'node.cordon', target: `a-${i}`, outcome: 'ok' }));
    appends.push(b.append({ actor: { kind: 'operator', name: 'b' }, action: 'node.cordon', target: `b-${i}`, outcome: 'ok' }));
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(appends);
  const records = await a.list({ limit: 1_000 });
  expect(verifyChain(records)).toMatchObject({ ok: true, records: 120 });
  expect(new Set(records.map((r) => r.target)).size).toBe(120);
  // Each writer's own records stay in the order it appended them.
  for (const who of ['a', 'b']) {
    const mine = records.filter((r) => r.actor.name === who).map((r) => Number(r.target!.split('-')[1]));
    expect(mine).toEqual([...mine].sort((x, y) => x - y));
  }
});
