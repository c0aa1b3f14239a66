import type { KV } from '@nats-io/kv';
import { greenHistorySchema, type GreenHistory } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { WatchedKv } from './watched-kv';

const KEY = 'history';

/** The green signal's history in the qy-green bucket (see greenHistorySchema): loaded at start, saved by the leader. */
export class GreenHistoryStore {
  private readonly bucket: WatchedKv<GreenHistory>;

  constructor(
    kv: KV,
    private readonly log: Logger,
  ) {
    this.bucket = new WatchedKv(kv, greenHistorySchema, log, 'the green history');
  }

  /** The history stored, or undefined when there is none or it does not match the schema (logged: the forecaster then starts cold). */
  async load(): Promise<GreenHistory | undefined> {
    return this.bucket.get(KEY, () => this.log.warn('the stored green history does not match its schema; the forecaster starts cold'));
  }

  /** Replaces the history stored; throws when the bucket cannot be written. */
  async save(history: GreenHistory): Promise<void> {
    await this.bucket.put(KEY, history);
  }
}
