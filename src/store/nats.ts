import { AuthorizationError, connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { KV_BUCKETS, STREAMS, agentConsumerName, subjects } from '../protocol';
import { ConfigError } from '../lifecycle';
import type { Logger } from '../telemetry/logger';
import { natsConnectionAuth, type NatsAuthConfig } from './nats-options';

export type { NatsConnection };

/** How often a process still waiting for its first NATS connection says so. */
export const NATS_WAIT_LOG_MS = 5_000;

/**
 * Connects and keeps reconnecting for ever: a NATS restart is an outage to ride out, not a reason to exit.
 * Until the first connection, a warning every `waitLogMs` says which servers are being tried and for how long
 * (a process waiting for a NATS that is not there yet would otherwise look hung); the connection is logged.
 * Credentials the server refuses are a ConfigError: retrying would not help.
 */
export async function connectNats(servers: string, name: string, log?: Logger, options: { auth?: NatsAuthConfig; inboxPrefix?: string; waitLogMs?: number } = {}): Promise<NatsConnection> {
  const serverList = servers.split(',').map((s) => s.trim());
  const startedMs = Date.now();
  const waiting = log
    ? setInterval(() => log.warn({ connection: name, servers: serverList, waitedS: Math.round((Date.now() - startedMs) / 1000) }, 'NATS not reachable yet; still trying'), options.waitLogMs ?? NATS_WAIT_LOG_MS)
    : undefined;
  let nc: NatsConnection;
  try {
    nc = await connectForEver(serverList, name, options);
  } catch (err) {
    if (err instanceof AuthorizationError) throw new ConfigError(`NATS at ${serverList.join(',')} refused this process's credentials (QY_NATS_USER and QY_NATS_PASSWORD, or QY_NATS_NKEY_SEED_FILE): ${err.message}`, { cause: err });
    throw err;
  } finally {
    clearInterval(waiting);
  }
  log?.info({ connection: name, server: nc.getServer() }, 'connected to NATS');
  if (log) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') log.warn({ nats: s.type, server: 'server' in s ? s.server : undefined }, `nats ${s.type}`);
      }
    })();
  }
  return nc;
}

function connectForEver(servers: string[], name: string, options: { auth?: NatsAuthConfig; inboxPrefix?: string }): Promise<NatsConnection> {
  return connect({
    servers,
    name,
    ...(options.auth ? natsConnectionAuth(options.auth) : {}),
    inboxPrefix: options.inboxPrefix,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5_000,
    // Capturing a stack trace for every request (each JetStream publish is one) costs ~10% CPU under load.
    noAsyncTraces: true,
  });
}

/**
 * Retries a JetStream call that timed out. With one server of a three-server nats-server 2.9 cluster gone,
 * about one JetStream API request in four goes unanswered (consumer creates and stream infos alike, measured
 * for two minutes after the loss; the server may place a new consumer on the dead peer, fixed in
 * nats-server 2.12), and one kind of request can fail for half a minute in a row. Each new try may be
 * answered. 30 tries of `JS_API_TIMEOUT_MS` ride out a minute; other errors are thrown at once. When the
 * tries run out, the last timeout is thrown with `what` was asked for in front of its message, so a log says
 * which request went unanswered.
 */
export async function retryTimeouts<T>(call: () => Promise<T>, what?: string, attempts = 30): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!/timeout/i.test((err as Error).message)) throw err;
      if (attempt >= attempts) {
        if (what && err instanceof Error) err.message = `${what}: no answer in ${attempts} tries (${err.message})`;
        throw err;
      }
    }
  }
}

/**
 * Whether an error says NATS or JetStream could not be reached or did not answer in time (a timeout while a
 * stream elects its leader, no responders, a closed or lost connection), rather than anything about the data.
 */
export function isUnavailable(err: unknown): boolean {
  const name = (err as Error | undefined)?.name ?? '';
  if (['TimeoutError', 'NoRespondersError', 'ConnectionError', 'ClosedConnectionError', 'DrainingConnectionError', 'RequestError'].includes(name)) return true;
  return /timeout|no responders|disconnect|connection (closed|lost)/i.test((err as Error | undefined)?.message ?? '');
}

/** How long a JetStream API request (consumer create, info) may take before it is tried again. */
export const JS_API_TIMEOUT_MS = 2_000;

/** A JetStream context whose API requests time out after `JS_API_TIMEOUT_MS` (callers retry them with `retryTimeouts`). */
export const apiJetstream = (nc: NatsConnection) => jetstream(nc, { timeout: JS_API_TIMEOUT_MS });

/** Stream settings that deployments tune. */
export interface StreamSettings {
  /** JetStream replicas (3 in a NATS cluster). */
  replicas: number;
  /** Window in which a message id is remembered for de-duplication. */
  duplicateWindowMs: number;
}

/** Creates the streams if they are missing and brings their subjects and settings up to date. */
export async function ensureStreams(nc: NatsConnection, settings: StreamSettings): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const ns = (ms: number) => ms * 1_000_000;
  const configs: (Partial<StreamConfig> & { name: string })[] = [
    {
      name: STREAMS.jobs,
      subjects: [subjects.allJobEvents, subjects.allStatus, subjects.allTerms],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: settings.replicas,
      duplicate_window: ns(settings.duplicateWindowMs),
    },
    {
      name: STREAMS.audit,
      subjects: [subjects.audit],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: settings.replicas,
      duplicate_window: ns(settings.duplicateWindowMs),
    },
    {
      name: STREAMS.assign,
      subjects: [subjects.allAssign],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: settings.replicas,
      duplicate_window: ns(settings.duplicateWindowMs),
    },
  ];
  for (const config of configs) {
    try {
      const info = await jsm.streams.info(config.name);
      await jsm.streams.update(config.name, { ...info.config, subjects: config.subjects, duplicate_window: config.duplicate_window });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(config);
    }
  }
  return jsm;
}

/**
 * The durable consumer through which one agent receives its nodes' work. Created by the scheduler when a
 * node registers, so work published while the agent is away waits for it.
 */
export async function ensureAgentConsumer(jsm: JetStreamManager, agentId: string): Promise<void> {
  const name = agentConsumerName(agentId);
  try {
    await jsm.consumers.info(STREAMS.assign, name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(STREAMS.assign, {
      durable_name: name,
      filter_subject: subjects.assignForAgent(agentId),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: 30_000_000_000,
      max_deliver: -1,
      max_ack_pending: 10_000,
    });
  }
}

/**
 * Removes an agent's work consumer and the work still queued for it (its nodes were forgotten). An agent that
 * registers again gets a new consumer.
 */
export async function deleteAgentConsumer(jsm: JetStreamManager, agentId: string): Promise<void> {
  try {
    await jsm.consumers.delete(STREAMS.assign, agentConsumerName(agentId));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await jsm.streams.purge(STREAMS.assign, { filter: subjects.assignForAgent(agentId) });
}

/** How many values each bucket keeps per key: only quotas keep a short history, for operators to look back. */
const BUCKET_HISTORY: Record<keyof typeof KV_BUCKETS, number> = { nodes: 1, quotas: 5, leases: 1, datasets: 1, green: 1 };

/** Opens (creating it if needed) one of the scheduler's KV buckets: registered nodes, run-time quotas, leadership leases, the green signal's history. */
export async function openBucket(nc: NatsConnection, bucket: keyof typeof KV_BUCKETS, replicas: number): Promise<KV> {
  return new Kvm(apiJetstream(nc)).create(KV_BUCKETS[bucket], { history: BUCKET_HISTORY[bucket], replicas });
}

/** Whether a JetStream API error says the stream or consumer does not exist. */
export function isNotFound(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === 404 || /not found/i.test(err.message);
  return err instanceof Error && /not found/i.test(err.message);
}
