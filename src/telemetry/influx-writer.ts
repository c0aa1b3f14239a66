import { InfluxDB, type IPoint } from 'influx';
import type { Logger } from './logger';

/** Where telemetry goes and how much of it may wait. */
export interface TelemetrySettings {
  /** InfluxDB 1.x HTTP address, e.g. http://127.0.0.1:8086. */
  url: string;
  database: string;
  /** How long raw points are kept (InfluxQL duration). */
  rawRetention: string;
  /** How long the hourly downsampled energy history is kept. */
  longTermRetention: string;
  /** Points buffered at most; beyond, new points are dropped (and counted). */
  maxBuffered: number;
  batchSize: number;
  flushIntervalMs: number;
}

/** Counters the writer reports to. */
export interface TelemetryCounters {
  dropped(n: number): void;
  written(n: number): void;
}

/** The retention policies and continuous queries that give the dashboards their long-range history. */
export const RAW_POLICY = 'raw';
export const LONG_TERM_POLICY = 'long_term';

/**
 * Telemetry for InfluxDB (1.x line protocol through the `influx` client): node heartbeats, pool power and job
 * lifecycle events. `push` never blocks and never fails: points wait in a bounded buffer and are written in
 * batches; when InfluxDB is down they are retried, and beyond the bound new points are dropped and counted.
 * Scheduling never waits for telemetry.
 */
export class TelemetryWriter {
  private readonly influx: InfluxDB;
  private buffer: IPoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private ready = false;

  constructor(
    private readonly settings: TelemetrySettings,
    private readonly counters: TelemetryCounters,
    private readonly log: Logger,
  ) {
    const url = new URL(settings.url);
    this.influx = new InfluxDB({ host: url.hostname, port: Number(url.port || 8086), protocol: url.protocol === 'https:' ? 'https' : 'http', database: settings.database });
  }

  /** Starts flushing; creates the database, retention policies and continuous queries when InfluxDB answers. */
  start(): void {
    this.timer = setInterval(() => void this.flush(), this.settings.flushIntervalMs);
    this.timer.unref();
    void this.prepare();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush().catch(() => undefined);
  }

  /** Queues a point; drops it (counted) when the buffer is full. */
  push(point: IPoint): void {
    if (this.buffer.length >= this.settings.maxBuffered) {
      this.counters.dropped(1);
      return;
    }
    this.buffer.push(point);
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Writes what is buffered, batch by batch; on failure keeps the batch for the next try. */
  async flush(): Promise<void> {
    if (this.flushing || this.buffer.length === 0) return;
    this.flushing = true;
    try {
      if (!this.ready) await this.prepare();
      while (this.buffer.length > 0) {
        const batch = this.buffer.slice(0, this.settings.batchSize);
        await this.influx.writePoints(batch, { retentionPolicy: RAW_POLICY, precision: 'ms' });
        this.buffer.splice(0, batch.length);
        this.counters.written(batch.length);
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message, buffered: this.buffer.length }, 'telemetry not written; will retry');
    } finally {
      this.flushing = false;
    }
  }

  /** The InfluxQL of the continuous query that keeps hourly pool power for the long term. */
  static continuousQuery(database: string): string {
    return `SELECT mean("power_watts") AS "power_watts", mean("green_watts") AS "green_watts" INTO "${database}"."${LONG_TERM_POLICY}"."pool_power_1h" FROM "${database}"."${RAW_POLICY}"."pool_power" GROUP BY time(1h), "pool"`;
  }

  private async prepare(): Promise<void> {
    if (this.ready) return;
    try {
      const db = this.settings.database;
      const names = await this.influx.getDatabaseNames();
      if (!names.includes(db)) await this.influx.createDatabase(db);
      const policies = (await this.influx.showRetentionPolicies(db)).map((p) => p.name);
      if (!policies.includes(RAW_POLICY)) await this.influx.createRetentionPolicy(RAW_POLICY, { database: db, duration: this.settings.rawRetention, replication: 1, isDefault: true });
      if (!policies.includes(LONG_TERM_POLICY)) await this.influx.createRetentionPolicy(LONG_TERM_POLICY, { database: db, duration: this.settings.longTermRetention, replication: 1 });
      const cqs = (await this.influx.showContinousQueries(db)).map((q) => q.name);
      if (!cqs.includes('pool_power_1h')) await this.influx.createContinuousQuery('pool_power_1h', TelemetryWriter.continuousQuery(db), db);
      this.ready = true;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'InfluxDB not ready; telemetry waits');
    }
  }

  /** Runs an InfluxQL query (tests, tools). */
  query<T>(influxql: string): Promise<T[]> {
    return this.influx.query<T>(influxql, { database: this.settings.database });
  }
}
