import type { Heartbeat, Pool } from '../src/protocol';
import { TelemetryWriter } from '../src/telemetry/influx-writer';
import type { Logger } from '../src/telemetry/logger';
import type { SchedulerMetrics } from '../src/telemetry/metrics';
import type { Clock, Timer } from '../src/time';
import type { SchedulerConfig } from './config';
import type { LeadershipView } from './leadership';
import type { NodeRegistry } from './nodes';
import type { JobRecord } from './state/job-table';

/**
 * InfluxDB telemetry, when QY_INFLUX_URL is set: heartbeats, pool power every interval and job lifecycle
 * events, each written by the leader of its pool alone (every replica sees them; counting them once).
 * Without an InfluxDB every call is a no-op.
 */
export class TelemetrySink {
  private writer: TelemetryWriter | undefined;
  private poolPowerTimer: Timer | undefined;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly leadership: LeadershipView,
    private readonly metrics: SchedulerMetrics,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  start(registry: NodeRegistry): void {
    if (!this.config.influxUrl) return;
    this.writer = new TelemetryWriter(
      {
        url: this.config.influxUrl,
        database: this.config.influxDatabase,
        rawRetention: this.config.influxRawRetention,
        longTermRetention: this.config.influxLongRetention,
        maxBuffered: this.config.influxBufferPoints,
        batchSize: 5_000,
        flushIntervalMs: 1_000,
      },
      { dropped: (n) => this.metrics.telemetryDropped.inc(n), written: (n) => this.metrics.telemetryWritten.inc(n) },
      this.log,
    );
    this.writer.start();
    this.poolPowerTimer = this.clock.setInterval(() => {
      const power = registry.poolPower();
      for (const pool of this.leadership.ledPools) {
        if (power[pool].nodes > 0) this.writer?.push({ measurement: 'pool_power', tags: { pool }, fields: { power_watts: power[pool].watts, green_watts: power[pool].greenWatts }, timestamp: new Date(this.clock.now()) });
      }
    }, this.config.influxPoolPowerIntervalMs);
  }

  async stop(): Promise<void> {
    this.poolPowerTimer?.cancel();
    await this.writer?.stop();
  }

  /** A heartbeat of a node of a pool this replica leads. */
  heartbeat(hb: Heartbeat, node: { pool: Pool; zone: string }, atMs: number): void {
    this.writer?.push({
      measurement: 'node_telemetry',
      tags: { node: hb.nodeId, pool: node.pool, zone: node.zone },
      fields: { cpu_util: hb.cpuUtil, mem_used_bytes: hb.memUsedBytes, gpu_util: hb.gpus.length > 0 ? hb.gpus.reduce((s, g) => s + g.util, 0) / hb.gpus.length : 0, power_watts: hb.powerWatts, green_share: hb.greenShare },
      timestamp: new Date(atMs),
    });
  }

  /** Queries the telemetry database (tests and tools); throws without an InfluxDB. */
  query<T>(influxQl: string): Promise<T[]> {
    if (!this.writer) throw new Error('no InfluxDB configured (QY_INFLUX_URL)');
    return this.writer.query<T>(influxQl);
  }

  /** A job lifecycle event. */
  jobEvent(job: JobRecord, event: string, fields: Record<string, number | string> = {}): void {
    if (this.leadership.leads(job.spec.pool)) this.writer?.push({ measurement: 'job_events', tags: { pool: job.spec.pool, tenant: job.tenant, event }, fields: { job_id: job.id, ...fields }, timestamp: new Date(this.clock.now()) });
  }
}
