import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { waitUntil } from '../../harness/wait';
import { JetStreamPublisher, publishUntilStored } from '../../src/store/js-publisher';
import { connectNats } from '../../src/store/nats';
import { ManualClock } from '../helpers/manual-clock';

/**
 * The one "publish until JetStream stores it" of the project (agents' status reports, the scheduler's work
 * for agents), against a real nats-server: a subject no stream stores yet fails (no responders) and is
 * tried again with backoff on the given clock, with what `message` says at each try, until a stream exists.
 */
let nats: LocalNatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats(nats.url, 'publish-until-stored');
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

test('tries again with backoff until a stream stores the message, sending what the last try asked for', async () => {
  const clock = new ManualClock(0);
  const publisher = new JetStreamPublisher(nc);
  const failures: number[] = [];
  const tries: number[] = [];
  const stored = publishUntilStored(publisher, 'retry.test.a', (attempt) => (tries.push(attempt), JSON.stringify({ attempt })), { firstDelayMs: 100, maxDelayMs: 250, clock, onFailure: (_err, retryMs) => failures.push(retryMs) });
  // No stream yet: each try fails at once; the waits double up to the maximum.
  for (const [i, wait] of [100, 200, 250].entries()) {
    await waitUntil(() => (failures.length === i + 1 ? true : undefined), 10_000, () => `try ${i + 1} did not fail`);
    expect(failures[i]).toBe(wait);
    clock.advanceTo(clock.now() + wait);
  }
  await waitUntil(() => (failures.length === 4 ? true : undefined), 10_000);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'RETRY_TEST', subjects: ['retry.test.>'] });
  clock.advanceTo(clock.now() + 250);
  await expect(stored).resolves.toBe(true);
  expect(tries).toEqual([1, 2, 3, 4, 5]);
  const msg = await jsm.streams.getMessage('RETRY_TEST', { last_by_subj: 'retry.test.a' });
  expect(msg?.json()).toEqual({ attempt: 5 });
  publisher.close();
});

test('gives up when the message is no longer wanted', async () => {
  const clock = new ManualClock(0);
  const publisher = new JetStreamPublisher(nc);
  let failures = 0;
  const stored = publishUntilStored(publisher, 'nowhere.b', (attempt) => (attempt < 3 ? '{}' : undefined), { firstDelayMs: 100, maxDelayMs: 100, clock, onFailure: () => failures++ });
  for (let i = 1; i <= 2; i++) {
    await waitUntil(() => (failures === i ? true : undefined), 10_000);
    clock.advanceTo(clock.now() + 100);
  }
  await expect(stored).resolves.toBe(false);
  publisher.close();
});
