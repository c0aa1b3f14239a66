import { jetstream } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { apiJetstream, retryTimeouts } from './nats';
import { OBJECT_STORES } from '../protocol';

/** The JetStream object store that holds the scheduler's state snapshots. */
export const SNAPSHOT_BUCKET = OBJECT_STORES.snapshots;
/** Snapshots kept: the newest, and older ones to fall back on when it is corrupt. */
const KEEP = 3;
/** Sequence numbers are zero-padded in names, so names sort as positions do. */
const nameOf = (seq: number) => `state-${String(seq).padStart(16, '0')}`;
const seqOf = (name: string) => Number(name.slice('state-'.length));

/**
 * Snapshots of the scheduler's state in a JetStream object store (chunked, replicated like the streams),
 * one object per log position. A rebuild tries the newest first and falls back to older ones.
 */
export class SnapshotStore {
  private constructor(
    /** For reads: short API timeouts, each retried (with a NATS server of three gone, any JetStream request may go unanswered). */
    private readonly reads: ObjectStore,
    /** For writes: nats.js's own timeouts, not retried (a snapshot that fails is taken again later), so a loaded server's slow acks do not fail them. */
    private readonly writes: ObjectStore,
  ) {}

  static async open(nc: NatsConnection, replicas: number): Promise<SnapshotStore> {
    const writes = await retryTimeouts(() => new Objm(jetstream(nc)).create(SNAPSHOT_BUCKET, { replicas, storage: 'file' }), 'the snapshot bucket');
    const reads = await retryTimeouts(() => new Objm(apiJetstream(nc)).open(SNAPSHOT_BUCKET), 'the snapshot bucket');
    return new SnapshotStore(reads, writes);
  }

  /** Stores a snapshot taken at `seq`; resolves once stored. Keeps the newest few. */
  async save(seq: number, data: Uint8Array): Promise<void> {
    await this.writes.putBlob({ name: nameOf(seq) }, data);
    const names = await this.names();
    for (const name of names.slice(KEEP)) await this.writes.delete(name).catch(() => undefined);
  }

  /** The positions of the stored snapshots, newest first. */
  async positions(): Promise<number[]> {
    return (await this.names()).map(seqOf);
  }

  /** A stored snapshot's data, or null when it is gone. */
  async load(seq: number): Promise<Uint8Array | null> {
    return retryTimeouts(() => this.reads.getBlob(nameOf(seq)), `snapshot ${seq}`);
  }

  private async names(): Promise<string[]> {
    return (await retryTimeouts(() => this.reads.list(), 'the list of snapshots'))
      .filter((i) => !i.deleted && i.name.startsWith('state-'))
      .map((i) => i.name)
      .sort()
      .reverse();
  }
}
