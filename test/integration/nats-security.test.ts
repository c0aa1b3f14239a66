import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { STREAMS, agentConsumerName, subjects } from '../../src/protocol';
import { agentInboxPrefix, generateNatsAuthorization } from '../../src/store/nats-auth';
import { connectNats, ensureStreams } from '../../src/store/nats';
import { waitUntil } from '../helpers/api';

const dir = mkdtempSync(join(tmpdir(), 'qy-nats-sec-'));
let server: LocalNatsServer;
let seeds: Record<string, string>;
const conns: NatsConnection[] = [];

/** Connects as a generated user; errors the server reports (permission violations) are collected. */
async function as(user: string, inboxPrefix?: string): Promise<{ nc: NatsConnection; errors: string[] }> {
  const seedFile = join(dir, `${user}.nk`);
  writeFileSync(seedFile, seeds[user]);
  const nc = await connectNats(server.url, `test-${user}`, undefined, { auth: { natsNkeySeedFile: seedFile }, inboxPrefix });
  conns.push(nc);
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String((s as { error?: unknown }).error ?? s));
  })();
  return { nc, errors };
}

beforeAll(async () => {
  const { config, users } = generateNatsAuthorization([
    { agentId: 'a1', nodeIds: ['node-a'] },
    { agentId: 'a2', nodeIds: ['node-b'] },
  ]);
  seeds = Object.fromEntries(users.map((u) => [u.name, u.seed]));
  const confFile = join(dir, 'server.conf');
  writeFileSync(confFile, config);
  server = await startNatsServer({ configFile: confFile });
  const scheduler = await as('scheduler');
  const jsm = await ensureStreams(scheduler.nc, { replicas: 1, duplicateWindowMs: 60_000 });
  for (const agentId of ['a1', 'a2']) {
    await jsm.consumers.add(STREAMS.assign, { durable_name: agentConsumerName(agentId), filter_subject: subjects.assignForAgent(agentId), ack_policy: AckPolicy.Explicit });
  }
  const js = jetstream(scheduler.nc);
  await js.publish(subjects.assign('a1', 'node-a'), JSON.stringify({ work: 'for a1' }));
  await js.publish(subjects.assign('a2', 'node-b'), JSON.stringify({ work: 'for a2' }));
});

afterAll(async () => {
  for (const nc of conns) await nc.close().catch(() => undefined);
  await server?.dispose();
});

describe('NATS permissions from configs/nats: an agent acts only for its own nodes', () => {
  test('an agent publishes its own heartbeat, but not another node’s', async () => {
    const watcher = await as('scheduler');
    const seen: string[] = [];
    watcher.nc.subscribe(subjects.allHeartbeats, { callback: (_e, m) => void seen.push(`${m.subject} ${m.string()}`) });
    await watcher.nc.flush();
    const agent = await as('agent-a1', agentInboxPrefix('a1'));
    agent.nc.publish(subjects.heartbeat('node-a'), '{}');
    agent.nc.publish(subjects.heartbeat('node-b'), '{}');
    // The server delivers one connection's messages in order: once this last one has arrived, node-b's would have too.
    agent.nc.publish(subjects.heartbeat('node-a'), 'last');
    await agent.nc.flush();
    await waitUntil(() => (seen.includes(`${subjects.heartbeat('node-a')} last`) ? true : undefined), 5_000, () => `seen: ${seen.join(', ')}`);
    await waitUntil(() => (agent.errors.length > 0 ? true : undefined), 5_000, () => 'no permission error reported');
    expect(seen).toEqual([`${subjects.heartbeat('node-a')} {}`, `${subjects.heartbeat('node-a')} last`]);
    expect(agent.errors.join(' ')).toMatch(/Permissions Violation for Publish to "qy\.heartbeat\.node-b"/);
  });

  test('an agent reports status for its own node into the job log, not for another', async () => {
    const agent = await as('agent-a1', agentInboxPrefix('a1'));
    const js = jetstream(agent.nc, { timeout: 1_000 });
    const ack = await js.publish(subjects.status('node-a'), '{}');
    expect(ack.stream).toBe(STREAMS.jobs);
    await expect(js.publish(subjects.status('node-b'), '{}')).rejects.toThrow();
  });

  test('an agent pulls its own assignments, but cannot read another agent’s', async () => {
    const agent = await as('agent-a1', agentInboxPrefix('a1'));
    const js = jetstream(agent.nc, { timeout: 1_000 });
    const mine = await js.consumers.get(STREAMS.assign, agentConsumerName('a1'));
    const batch = await mine.fetch({ max_messages: 1, expires: 1_000 });
    const got: unknown[] = [];
    for await (const m of batch) {
      got.push(m.json());
      m.ack();
    }
    expect(got).toEqual([{ work: 'for a1' }]);
    await expect(js.consumers.get(STREAMS.assign, agentConsumerName('a2'))).rejects.toThrow();
    const sub = agent.nc.subscribe(subjects.assignForAgent('a2'));
    await agent.nc.flush().catch(() => undefined);
    await waitUntil(() => (agent.errors.length > 0 ? true : undefined), 5_000, () => 'no permission error reported');
    expect(agent.errors.join(' ')).toMatch(/Permissions Violation for Subscription to "qy\.assign\.a2\.>"/);
    sub.unsubscribe();
  });

  test('an agent cannot manage streams or read the job log', async () => {
    const agent = await as('agent-a2', agentInboxPrefix('a2'));
    const jsm = await jetstreamManager(agent.nc, { timeout: 1_000 }).catch((e: Error) => e);
    if (jsm instanceof Error) expect(jsm.message).toMatch(/timeout|permission|no responders/i);
    else await expect(jsm.streams.info(STREAMS.jobs)).rejects.toThrow();
  });

  test('without credentials nothing connects', async () => {
    await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
  });
});

describe('TLS by configuration', () => {
  let tlsServer: LocalNatsServer;
  let mtlsServer: LocalNatsServer;
  const tls = mkdtempSync(join(tmpdir(), 'qy-tls-'));

  beforeAll(async () => {
    const sh = (args: string[]) => execFileSync('openssl', args, { cwd: tls, stdio: 'ignore' });
    sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=qy-test-ca']);
    sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(tls, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    sh(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext']);
    const conf = join(tls, 'tls.conf');
    writeFileSync(conf, `tls {\n  cert_file: "${join(tls, 'server.crt')}"\n  key_file: "${join(tls, 'server.key')}"\n}\n`);
    tlsServer = await startNatsServer({ configFile: conf });
    // Mutual TLS: the server also asks for a client certificate signed by the CA (verify: true).
    sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=qy-agent']);
    sh(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '1']);
    const mutual = join(tls, 'mtls.conf');
    writeFileSync(mutual, `tls {\n  cert_file: "${join(tls, 'server.crt')}"\n  key_file: "${join(tls, 'server.key')}"\n  ca_file: "${join(tls, 'ca.crt')}"\n  verify: true\n}\n`);
    mtlsServer = await startNatsServer({ configFile: mutual });
  });

  afterAll(async () => {
    await tlsServer?.dispose();
    await mtlsServer?.dispose();
  });

  test('a client with the CA connects over TLS; one without it is refused', async () => {
    const nc = await connectNats(tlsServer.url, 'tls-client', undefined, { auth: { natsTlsCa: join(tls, 'ca.crt') } });
    expect(nc.info?.tls_required).toBe(true);
    await nc.close();
    await expect(connect({ servers: tlsServer.url, reconnect: false })).rejects.toThrow();
  });

  test('mutual TLS: a client with the certificate of QY_NATS_TLS_CERT/QY_NATS_TLS_KEY connects; one with the CA alone is refused', async () => {
    const ca = join(tls, 'ca.crt');
    const nc = await connectNats(mtlsServer.url, 'mtls-client', undefined, { auth: { natsTlsCa: ca, natsTlsCert: join(tls, 'client.crt'), natsTlsKey: join(tls, 'client.key') } });
    expect(nc.info?.tls_verify).toBe(true);
    await nc.flush();
    await nc.close();
    await expect(connect({ servers: mtlsServer.url, reconnect: false, tls: { caFile: ca } })).rejects.toThrow();
  });
});
