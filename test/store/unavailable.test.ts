import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { connectNats, isUnavailable } from '../../src/store/nats';

let nats: LocalNatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats(nats.url, 'test-unavailable');
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

describe('isUnavailable: NATS not answering, as opposed to bad data', () => {
  test('no responders and a request nobody answers in time are unavailability; an error about the data is not', async () => {
    const noResponders = await nc.request('qy.test.nobody', 'x', { timeout: 1_000 }).catch((err: unknown) => err);
    expect(isUnavailable(noResponders)).toBe(true);
    const sub = nc.subscribe('qy.test.silent', { callback: () => undefined });
    const timedOut = await nc.request('qy.test.silent', 'x', { timeout: 50 }).catch((err: unknown) => err);
    sub.unsubscribe();
    expect(isUnavailable(timedOut)).toBe(true);
    expect(isUnavailable(new Error('digest mismatch'))).toBe(false);
    expect(isUnavailable(new SyntaxError('Unexpected token'))).toBe(false);
  });
});
