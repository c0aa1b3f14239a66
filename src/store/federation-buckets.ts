import { createHash } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { claimSchema, datasetRecordSchema, fedBuckets, KV_BUCKETS, type Claim, type DatasetRecord } from '../protocol';
import { apiJetstream } from './nats';

/**
 * The federation's two kinds of record in JetStream KV: datasets (with their lineage) and the per-job claim.
 * Each site keeps its own buckets, created from its own connection so JetStream places them in its own
 * cluster; other sites open them by name across the gateways. Writes after a read are compare-and-set.
 */

/** Opens buckets by name on one connection, once each. */
export class BucketOpener {
  private readonly opened = new Map<string, Promise<KV>>();
  constructor(
    private readonly nc: NatsConnection,
    private readonly replicas: number,
  ) {}

  /**
   * The bucket, created when `create` (a site's own), else opened (another site's; fails if it does not
   * exist). With `ttlMs`, a site's own bucket keeps each key that long after its last write; a bucket made
   * before (without it, or with another) is brought to it.
   */
  bucket(name: string, create: boolean, ttlMs?: number): Promise<KV> {
    let kv = this.opened.get(name);
    if (!kv) {
      const kvm = new Kvm(apiJetstream(this.nc));
      kv = create ? kvm.create(name, { history: 1, replicas: this.replicas, ttl: ttlMs }).then((b) => (ttlMs === undefined ? b : this.withTtl(b, ttlMs))) : kvm.open(name);
      kv.catch(() => this.opened.delete(name));
      this.opened.set(name, kv);
    }
    return kv;
  }

  private async withTtl(kv: KV, ttlMs: number): Promise<KV> {
    const status = await kv.status();
    if (status.ttl === ttlMs) return kv;
    const config = status.streamInfo.config;
    await (await apiJetstream(this.nc).jetstreamManager()).streams.update(config.name, { ...config, max_age: ttlMs * 1_000_000 });
    return kv;
  }
}

/** Reads a JSON value of a schema from a KV entry, with its revision and when it was written; undefined when absent or deleted. */
async function read<T>(kv: KV, key: string, parse: (v: unknown) => T): Promise<{ value: T; revision: number; writtenAtMs: number } | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== 'PUT') return undefined;
  return { value: parse(entry.json()), revision: entry.revision, writtenAtMs: entry.created.getTime() };
}

/** Retries `step` while a compare-and-set loses to another writer. */
async function withCas<R>(step: () => Promise<R>, attempts = 20): Promise<R> {
  for (let i = 1; ; i++) {
    try {
      return await step();
    } catch (err) {
      if (i >= attempts || !/wrong last sequence|key exists/i.test((err as Error).message)) throw err;
    }
  }
}

/** Dataset records: one bucket per registering site (`qy-fed-datasets-<site>`), or `qy-datasets` without federation. */
export class DatasetStore {
  constructor(
    private readonly opener: BucketOpener,
    /** The local site, or undefined when not federated. */
    private readonly site: string | undefined,
  ) {}

  private bucketOf(site: string): Promise<KV> {
    if (this.site === undefined) return this.opener.bucket(KV_BUCKETS.datasets, true);
    return this.opener.bucket(fedBuckets.datasets(site), site === this.site);
  }

  /** Stores a new record in the local site's bucket. */
  async create(record: DatasetRecord): Promise<void> {
    await (await this.bucketOf(this.site ?? 'local')).create(record.id, JSON.stringify(record));
  }

  /** The record of an id registered at `site`; undefined when there is none. */
  async get(site: string, id: string): Promise<DatasetRecord | undefined> {
    return (await read(await this.bucketOf(site), id, (v) => datasetRecordSchema.parse(v)))?.value;
  }

  /** Changes a record by compare-and-set (retried on a concurrent write); returns the new record. */
  async update(site: string, id: string, change: (r: DatasetRecord) => DatasetRecord): Promise<DatasetRecord | undefined> {
    const kv = await this.bucketOf(site);
    return withCas(async () => {
      const current = await read(kv, id, (v) => datasetRecordSchema.parse(v));
      if (!current) return undefined;
      const next = change(current.value);
      await kv.update(id, JSON.stringify(next), current.revision);
      return next;
    });
  }
}

/** Keys of the claims bucket that index Idempotency-Keys rather than hold claims. */
const IDEMPOTENCY_PREFIX = 'idem-';

/** The job an Idempotency-Key made, and a hash of the body it came with (a reuse with another body is refused). */
export interface IdempotencyRecord {
  jobId: string;
  specHash: string;
}

function idempotencyKeyOf(tenant: string, key: string): string {
  return `${IDEMPOTENCY_PREFIX}${createHash('sha256').update(`${tenant}\u0000${key}`).digest('hex')}`;
}

/** The outcome of an executor's bid to start a job. */
export type StartBid = { ok: true } | { ok: false; reason: string };

/**
 * Claims of the jobs a home site routed away (`qy-fed-claims-<home>`, key = job id). The home's bucket keeps
 * a claim `retentionMs` after its last write (bounded state: the bucket, and the home's start, which reads
 * every key, do not grow with history); a claim still offered is renewed before that (`renewOffered`).
 */
export class ClaimStore {
  constructor(
    private readonly opener: BucketOpener,
    private readonly site: string,
    private readonly retentionMs?: number,
  ) {}

  private bucketOf(home: string): Promise<KV> {
    return home === this.site ? this.opener.bucket(fedBuckets.claims(home), true, this.retentionMs) : this.opener.bucket(fedBuckets.claims(home), false);
  }

  /**
   * Rewrites a claim held here (as just read) that is still offered and was last written more than half the
   * retention before `nowMs`, so it does not expire while it waits (compare-and-set: a start meanwhile
   * wins). True when renewed.
   */
  async renewOffered(held: { value: Claim; revision: number; writtenAtMs: number }, nowMs: number): Promise<boolean> {
    if (this.retentionMs === undefined || held.value.state !== 'offered' || nowMs - held.writtenAtMs <= this.retentionMs / 2) return false;
    return this.replace(held.value, held.revision);
  }

  /** Creates the claim of a new job (create-only: one claim per job id, ever). */
  async create(claim: Claim): Promise<void> {
    await (await this.bucketOf(this.site)).create(claim.jobId, JSON.stringify(claim));
  }

  /** A claim held at `home`, with its revision and when it was last written. */
  async get(home: string, jobId: string): Promise<{ value: Claim; revision: number; writtenAtMs: number } | undefined> {
    return read(await this.bucketOf(home), jobId, (v) => claimSchema.parse(v));
  }

  /** Rewrites a claim held here if it is still at `revision`; false when someone wrote it since. */
  async replace(claim: Claim, revision: number): Promise<boolean> {
    try {
      await (await this.bucketOf(this.site)).update(claim.jobId, JSON.stringify(claim), revision);
      return true;
    } catch (err) {
      if (/wrong last sequence/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /**
   * The executor's bid to start a job: `offered` to it becomes `started` by compare-and-set, so the home cannot
   * take it back once it runs, and the executor cannot start what the home has taken back. Already started
   * by this site is a yes (a replay after a restart).
   */
  async bidToStart(home: string, jobId: string, executor: string): Promise<StartBid> {
    const kv = await this.bucketOf(home);
    return withCas(async () => {
      const current = await read(kv, jobId, (v) => claimSchema.parse(v));
      if (!current) return { ok: false, reason: `no claim for ${jobId} at ${home}` };
      const c = current.value;
      if (c.executor !== executor) return { ok: false, reason: `${home} gave it to ${c.executor}` };
      if (c.state === 'started') return { ok: true };
      if (c.state === 'cancelled') return { ok: false, reason: `cancelled at ${home}` };
      await kv.update(jobId, JSON.stringify({ ...c, state: 'started' } satisfies Claim), current.revision);
      return { ok: true };
    });
  }

  /** Ids of every claim held here (for the home's watch over what it routed away, at start). */
  async keys(): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await (await this.bucketOf(this.site)).keys()) if (!key.startsWith(IDEMPOTENCY_PREFIX)) out.push(key);
    return out;
  }

  /**
   * Records which job a tenant's Idempotency-Key made, for jobs routed away (create-only: the first wins).
   * Returns the record already there when another submission took the key first.
   */
  async claimIdempotencyKey(tenant: string, key: string, record: IdempotencyRecord): Promise<IdempotencyRecord | undefined> {
    const kv = await this.bucketOf(this.site);
    try {
      await kv.create(idempotencyKeyOf(tenant, key), JSON.stringify(record));
      return undefined;
    } catch (err) {
      if (!/wrong last sequence|key exists/i.test((err as Error).message)) throw err;
      return (await this.idempotencyRecord(tenant, key)) ?? record;
    }
  }

  /** The job a tenant's Idempotency-Key made, if it was routed away. */
  async idempotencyRecord(tenant: string, key: string): Promise<IdempotencyRecord | undefined> {
    return (await read(await this.bucketOf(this.site), idempotencyKeyOf(tenant, key), (v) => v as IdempotencyRecord))?.value;
  }

  /** Forgets a key whose job could not be stored. */
  async releaseIdempotencyKey(tenant: string, key: string): Promise<void> {
    await (await this.bucketOf(this.site)).delete(idempotencyKeyOf(tenant, key));
  }
}
