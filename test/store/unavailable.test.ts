import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { connectNats, isUnavailable, retryTimeouts } from '../../src/store/nats';

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

describe('retryTimeouts', () => {
  test('tries a timed-out call again, throws any other error at once, and names what went unanswered when it gives up', async () => {
    let calls = 0;
    const answeredThird = await retryTimeouts(async () => {
      if (++calls < 3) throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
      return 'answered';
    }, 'a test request');
    expect([answeredThird, calls]).toEqual(['answered', 3]);

    calls = 0;
    const bad = await retryTimeouts(async () => {
      calls++;
      throw new Error('stream not found');
    }, 'a test request').catch((err: Error) => err);
    expect([bad.message, calls]).toEqual(['stream not found', 1]);

    calls = 0;
    const silent = await retryTimeouts(
      async () => {
        calls++;
        throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
      },
      "the job log's stream info",
      4,
    ).catch((err: Error) => err);
    expect(calls).toBe(4);
    expect(silent.message).toBe("the job log's stream info: no answer in 4 tries (timeout)");
    expect(isUnavailable(silent)).toBe(true);
  });
});
