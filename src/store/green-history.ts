import type { KV } from '@nats-io/kv';
import { greenHistorySchema, type GreenHistory } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { retryTimeouts } from './nats';

const KEY = 'history';

/** The green signal's history in the qy-green bucket (see greenHistorySchema): loaded at start, saved by the leader. */
export class GreenHistoryStore {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** The history stored, or undefined when there is none or it does not match the schema (logged: the forecaster then starts cold). */
  async load(): Promise<GreenHistory | undefined> {
    const entry = await retryTimeouts(() => this.kv.get(KEY), 'the green history');
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      json = undefined;
    }
    const parsed = greenHistorySchema.safeParse(json);
    if (parsed.success) return parsed.data;
    this.log.warn({ revision: entry.revision }, 'the stored green history does not match its schema; the forecaster starts cold');
    return undefined;
  }

  /** Replaces the history stored; throws when the bucket cannot be written. */
  async save(history: GreenHistory): Promise<void> {
    await this.kv.put(KEY, JSON.stringify(history));
  }
}
