import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { loadSchedulerConfig } from '../../scheduler/config';
import { Leadership, leaseKeyOf } from '../../scheduler/leadership';
import type { LeaderTerm, Pool } from '../../src/protocol';
import { JobLog } from '../../src/store/job-log';
import { connectNats, ensureStreams, openBucket } from '../../src/store/nats';
import { waitUntil } from '../helpers/api';
import { silentLog } from '../helpers/stack';

let nats: LocalNatsServer;
let nc: NatsConnection;
let kv: KV;
let log: JobLog;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats(nats.url, 'leadership-test', silentLog);
  kv = await openBucket(nc, 'leases', 1);
  await ensureStreams(nc, { replicas: 1, duplicateWindowMs: 60_000 });
  log = new JobLog(nc, silentLog);
});

afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** Leadership whose rebuilds only take up the pools won, recording each rebuild's reason and each pool taken up. */
function recordingLeadership(config: ReturnType<typeof loadSchedulerConfig>, jobLog: JobLog) {
  const rebuilds: string[] = [];
  const tookUp: string[] = [];
  const leadership: Leadership = new Leadership(config, silentLog, {
    jobLog: () => jobLog,
    rebuild: async (reason) => {
      rebuilds.push(reason);
      leadership.activateWon();
    },
    rebuilding: () => undefined,
    tookUp: (pool, term) => tookUp.push(`${pool} ${term}`),
  });
  return { leadership, rebuilds, tookUp };
}

test('pools elected while a takeover writes its term markers join its rebuild: one rebuild for all, each pool taken up with its own term', async () => {
  // Long leases (nothing here waits for one to expire) and a short retry, so a released lease is taken at the next look.
  const config = loadSchedulerConfig({}, { natsUrl: nats.url, replicaId: 'me', leaseDurationMs: 30_000, leaseRenewDeadlineMs: 20_000, leaseRetryMs: 100 });
  // Another replica holds `intelligent` and `super`: only `general` is won at once.
  const held = (pool: Pool, released: boolean) => kv.put(leaseKeyOf(pool), JSON.stringify({ holder: 'other', address: 'http://other', term: 1, ...(released ? { released } : {}) }));
  for (const pool of ['intelligent', 'super'] as const) await held(pool, false);

  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const markers: string[] = [];
  // The job log on the test's server, whose first marker (general's) is held until the other two pools have
  // been elected meanwhile.
  const jobLog = new (class extends JobLog {
    override async appendTerm(m: LeaderTerm): Promise<number> {
      markers.push(`${m.pool} ${m.term}`);
      if (m.pool === 'general') await gate;
      return super.appendTerm(m);
    }
  })(nc, silentLog);
  const { leadership, rebuilds, tookUp } = recordingLeadership(config, jobLog);
  try {
    const campaign = leadership.campaign(kv, 'http://me');
    await waitUntil(() => (markers.includes('general 1') ? true : undefined), 10_000, () => `no term marker for general: ${JSON.stringify(markers)}`);
    // The other replica gives both pools up while general's marker is being written: this replica is elected to them.
    for (const pool of ['intelligent', 'super'] as const) await held(pool, true);
    await waitUntil(() => (['intelligent', 'super'].every((p) => leadership.leaderOf(p as Pool)?.holder === 'me') ? true : undefined), 10_000, () => `not elected: ${JSON.stringify(['intelligent', 'super'].map((p) => leadership.leaderOf(p as Pool)))}`);
    expect(rebuilds).toEqual([]);
    openGate();
    await campaign;

    // One rebuild took up all three; without joining, general would have had one of its own and the others a second.
    expect(rebuilds).toHaveLength(1);
    expect(rebuilds[0]).toBe('elected leader of general (term 1), intelligent (term 2), super (term 2)');
    expect(markers).toEqual(['general 1', 'intelligent 2', 'super 2']);
    expect(leadership.ledPools.sort()).toEqual(['general', 'intelligent', 'super']);
    expect(tookUp).toEqual(['general 1', 'intelligent 2', 'super 2']);
    // The markers are in the log, as a later leader reads them.
    expect(await Promise.all((['general', 'intelligent', 'super'] as const).map((p) => log.lastTerm(p)))).toEqual([1, 2, 2]);
  } finally {
    openGate();
    await leadership.stop();
  }
});

test('pools taken over together are rebuilt once: the rebuild waits until every pool still led has looked at its lease again', async () => {
  const config = loadSchedulerConfig({}, { natsUrl: nats.url, replicaId: 'me2', leaseDurationMs: 30_000, leaseRenewDeadlineMs: 20_000, leaseRetryMs: 50 });
  for (const pool of ['general', 'intelligent', 'super'] as const) await kv.delete(leaseKeyOf(pool));
  // Renewals wait at this gate while the test overwrites the three leases, so none of them slips in between.
  let gate: Promise<void> | undefined;
  const gated = new Proxy(kv, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown;
      if (prop === 'update') return async (...args: Parameters<KV['update']>) => (await gate, t.update(...args));
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  const { leadership, rebuilds } = recordingLeadership(config, log);
  try {
    await leadership.campaign(gated, 'http://me2');
    await waitUntil(() => (leadership.ledPools.length === 3 ? true : undefined), 10_000, () => `leads ${leadership.ledPools.join(', ')}`);
    expect(rebuilds).toHaveLength(1);
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    for (const pool of ['general', 'intelligent', 'super'] as const) await kv.put(leaseKeyOf(pool), JSON.stringify({ holder: 'other', address: 'http://other', term: 9 }));
    open();
    await waitUntil(() => (rebuilds.length >= 2 ? true : undefined), 10_000, () => `rebuilds: ${JSON.stringify(rebuilds)}`);
    // One rebuild for the three; one per pool before (each found lost at its own renewal, a retry period apart).
    expect(rebuilds[1]).toMatch(/^deposed from pool /);
    expect(rebuilds[1].slice('deposed from pool '.length).split('; ').sort()).toEqual(['general', 'intelligent', 'super'].map((p) => `${p}: the lease was taken over`));
    expect(leadership.ledPools).toEqual([]);
  } finally {
    await leadership.stop();
  }
});
