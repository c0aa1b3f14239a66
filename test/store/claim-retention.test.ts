import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { waitUntil } from '../../harness/wait';
import { fedBuckets, jobSpecSchema, type Claim } from '../../src/protocol';
import { BucketOpener, ClaimStore } from '../../src/store/federation-buckets';
import { connectNats } from '../../src/store/nats';

/**
 * The claims of jobs a home site routed away leave its bucket a retention after their last write, so the
 * bucket (and the home's start, which reads every key) does not grow with history; a claim still offered is
 * renewed before it would expire. Against a real nats-server.
 */
let nats: LocalNatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats(nats.url, 'claims-test');
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

const DAY_MS = 86_400_000;
let n = 0;
const claim = (site: string): Claim => ({ jobId: `j${++n}`, home: site, executor: 'east', state: 'offered', tenant: 't', spec: jobSpecSchema.parse({ pool: 'general', resources: { cpuMillis: 100, memBytes: 1 } }), submittedAtMs: 0, route: 'test', gaveBack: [], inputs: [] });
/** The time to live of a site's claims bucket, as JetStream holds it (opened afresh, not created). */
const ttlOf = async (site: string) => (await (await new BucketOpener(nc, 1).bucket(fedBuckets.claims(site), false)).status()).ttl;

describe('claims retention', () => {
  test('the home bucket keeps keys for the retention; a bucket made before without one is brought to it, keeping its claims', async () => {
    const before = new ClaimStore(new BucketOpener(nc, 1), 'west');
    const old = claim('west');
    await before.create(old);
    expect(await ttlOf('west')).toBe(0);

    const after = new ClaimStore(new BucketOpener(nc, 1), 'west', 30 * DAY_MS);
    expect((await after.get('west', old.jobId))?.value).toEqual(old); // opens (and brings) the bucket
    expect(await ttlOf('west')).toBe(30 * DAY_MS);
  });

  test('an offered claim is renewed once half the retention has passed since its last write; a started one is not', async () => {
    const store = new ClaimStore(new BucketOpener(nc, 1), 'north', 30 * DAY_MS);
    const c = claim('north');
    await store.create(c);
    const held = (await store.get('north', c.jobId))!;
    expect(Math.abs(held.writtenAtMs - Date.now())).toBeLessThan(60_000);
    expect(await store.renewOffered(held, held.writtenAtMs + 14 * DAY_MS)).toBe(false);
    expect((await store.get('north', c.jobId))!.revision).toBe(held.revision);
    expect(await store.renewOffered(held, held.writtenAtMs + 16 * DAY_MS)).toBe(true);
    const renewed = (await store.get('north', c.jobId))!;
    expect(renewed.revision).toBeGreaterThan(held.revision);
    expect(renewed.value).toEqual(c);

    expect(await store.bidToStart('north', c.jobId, 'east')).toEqual({ ok: true });
    const started = (await store.get('north', c.jobId))!;
    expect(await store.renewOffered(started, started.writtenAtMs + 29 * DAY_MS)).toBe(false);
    // A renewal from a stale read loses to the write that came after it.
    expect(await store.renewOffered(renewed, renewed.writtenAtMs + 16 * DAY_MS)).toBe(false);
    expect((await store.get('north', c.jobId))!.value.state).toBe('started');
  });

  test('a claim past the retention is gone from the bucket and from its keys', async () => {
    const store = new ClaimStore(new BucketOpener(nc, 1), 'south', 1_000);
    const c = claim('south');
    await store.create(c);
    expect(await store.keys()).toContain(c.jobId);
    await waitUntil(async () => ((await store.get('south', c.jobId)) === undefined ? true : undefined), 60_000, () => 'the claim did not expire');
    expect(await store.keys()).not.toContain(c.jobId);
  });
});
