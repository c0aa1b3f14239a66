import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { afterEach, expect, test, vi } from 'vitest';
import { JetStreamPublisher } from '../../src/store/js-publisher';

/** A connection that records publishes and lets the test answer them. */
function fakeConnection() {
  let onReply: ((err: Error | null, msg: Msg) => void) | undefined;
  const published: { subject: string; reply: string }[] = [];
  const nc = {
    subscribe: (_subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) => {
      onReply = opts.callback;
      return { unsubscribe: () => undefined };
    },
    publish: (subject: string, _data: unknown, opts: { reply: string }) => published.push({ subject, reply: opts.reply }),
  } as unknown as NatsConnection;
  const ack = (reply: string, seq: number) => onReply!(null, { subject: reply, data: new TextEncoder().encode('x'), json: () => ({ stream: 'S', seq }) } as unknown as Msg);
  return { nc, published, ack };
}

afterEach(() => vi.useRealTimers());

test('the timeout sweep runs only while acknowledgements are awaited', async () => {
  vi.useFakeTimers();
  const { nc, published, ack } = fakeConnection();
  const publisher = new JetStreamPublisher(nc, 1_000);
  expect(vi.getTimerCount()).toBe(0);
  const stored = publisher.publish('qy.status.n1', '{}');
  await vi.advanceTimersByTimeAsync(0);
  expect(published).toHaveLength(1);
  expect(vi.getTimerCount()).toBe(1);
  ack(published[0].reply, 7);
  await expect(stored).resolves.toEqual({ stream: 'S', seq: 7, duplicate: false });
  // The next sweep finds nothing waiting and stops.
  await vi.advanceTimersByTimeAsync(200);
  expect(vi.getTimerCount()).toBe(0);
  publisher.close();
});

test('an unanswered publish still fails after the timeout', async () => {
  vi.useFakeTimers();
  const { nc } = fakeConnection();
  const publisher = new JetStreamPublisher(nc, 1_000);
  const stored = publisher.publish('qy.status.n1', '{}');
  const outcome = expect(stored).rejects.toThrow(/no acknowledgement from JetStream within 1000 ms/);
  await vi.advanceTimersByTimeAsync(1_200);
  await outcome;
  await vi.advanceTimersByTimeAsync(200);
  expect(vi.getTimerCount()).toBe(0);
  publisher.close();
});
