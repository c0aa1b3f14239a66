import type { KV, KvEntry } from '@nats-io/kv';
import type { z } from 'zod';
import type { Logger } from '../telemetry/logger';
import { retryTimeouts } from './nats';

/**
 * A JetStream KV bucket of JSON values of one schema, as every replica keeps it in memory: load every key,
 * then follow the changes other replicas write (the node registry, the quotas operators set). Values that do
 * not match the schema are skipped, so a bad write cannot stop a replica from starting or following.
 */
export class WatchedKv<T> {
  private stopWatching: (() => void) | undefined;

  constructor(
    private readonly kv: KV,
    private readonly schema: z.ZodType<T>,
    private readonly log: Logger,
    /** What the bucket holds, for log lines: "the node registry", "quotas". */
    private readonly what: string,
  ) {}

  /** Every key's current value; keys whose value does not match the schema go to `onInvalid` instead. */
  async loadAll(onInvalid?: (key: string) => void): Promise<Map<string, T>> {
    const keys = await retryTimeouts(async () => {
      const found: string[] = [];
      for await (const key of await this.kv.keys()) found.push(key);
      return found;
    }, `the keys of ${this.what}`);
    const values = new Map<string, T>();
    for (const key of keys) {
      const value = await this.get(key, onInvalid);
      if (value !== undefined) values.set(key, value);
    }
    return values;
  }

  /** One key's current value (retried like every read); undefined when absent, deleted, or not matching the schema (then `onInvalid`). */
  async get(key: string, onInvalid?: (key: string) => void): Promise<T | undefined> {
    const entry = await retryTimeouts(() => this.kv.get(key), `${key} in ${this.what}`);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const value = this.valueOf(entry);
    if (value === undefined) onInvalid?.(key);
    return value;
  }

  /**
   * Calls `onChange` with every valid value written from now on, and `onDelete` with every key deleted, each
   * with the bucket's revision of the change, until `stop` (a second call replaces the first).
   */
  async follow(onChange: (key: string, value: T, revision: number) => void, onDelete?: (key: string, revision: number) => void): Promise<void> {
    this.stop();
    const watch = await retryTimeouts(() => this.kv.watch({ include: 'updates' }), `a watch of ${this.what}`);
    this.stopWatching = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation !== 'PUT') {
          onDelete?.(entry.key, entry.revision);
          continue;
        }
        const value = this.valueOf(entry);
        if (value !== undefined) onChange(entry.key, value, entry.revision);
      }
    })().catch((err) => this.log.warn({ err }, `following ${this.what} stopped`));
  }

  /** Stops following. */
  stop(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  /** An entry's value when it is JSON that matches the schema (a value that is not JSON must not end the watch). */
  private valueOf(entry: KvEntry): T | undefined {
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      return undefined;
    }
    const parsed = this.schema.safeParse(json);
    return parsed.success ? parsed.data : undefined;
  }

  /** Stores a value as JSON; every replica that follows the bucket sees it. Resolves with its revision. */
  async put(key: string, value: T): Promise<number> {
    return this.kv.put(key, JSON.stringify(value));
  }

  /** Deletes a key; every replica that follows the bucket sees it gone. */
  async delete(key: string): Promise<void> {
    await this.kv.delete(key);
  }
}
