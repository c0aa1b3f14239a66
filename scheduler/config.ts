import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_AGING_MS, DEFAULT_BACKFILL_DEPTH, DEFAULT_MAX_ATTEMPTS, DEFAULT_PREEMPTION_MAX_PER_HOUR } from '../src/core';
import { DEFAULT_DEFERRAL_SHARES, FORECASTERS, formatDeferralShares, parseDeferralShares } from '../src/green';
import { ConfigError, loadEnvConfig } from '../src/lifecycle';
import { assertSafeTimings } from '../src/store/lease';
import { powerCapsKwSchema, type PowerCapKw } from '../src/metering/power';
import { NATS_AUTH_ENV, natsAuthConfigSchema } from '../src/store/nats-options';
import { LOG_LEVELS } from '../src/telemetry/logger';

const ms = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * The scheduler's configuration: every setting, its environment variable, its default and its meaning.
 * Parsed once in main and passed down; the README's configuration table is generated from this schema, its
 * defaults and these comments (npm run docs:gen; test/docs.test.ts fails when they differ).
 */
export const schedulerConfigSchema = natsAuthConfigSchema.extend({
  /** NATS servers, comma-separated. Env: QY_NATS_URL */
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  /** Address the HTTP API listens on. Env: QY_HTTP_HOST */
  httpHost: z.string().min(1).default('127.0.0.1'),
  /** Port of the HTTP API (0 picks a free one). Env: QY_HTTP_PORT */
  httpPort: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Log level: fatal, error, warn, info, debug, trace or silent. Env: QY_LOG_LEVEL */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Human-readable logs instead of JSON lines. Env: QY_LOG_PRETTY */
  logPretty: bool(false),
  /** How often agents send heartbeats (told to them at registration). Env: QY_HEARTBEAT_INTERVAL_MS */
  heartbeatIntervalMs: ms(1_000),
  /** Silence after which a node is suspect (no new work). Env: QY_SUSPECT_AFTER_MS */
  suspectAfterMs: ms(3_000),
  /** Silence after which a node is down and its jobs are requeued (not less than QY_SUSPECT_AFTER_MS; equal: no suspect phase). Env: QY_DOWN_AFTER_MS */
  downAfterMs: ms(10_000),
  /** A node down this long (counted from its last heartbeat, kept in the node bucket across restarts) is forgotten, like Nomad's node_gc_threshold: out of the node list, its agent's work consumer removed; its agent registering again brings it back. Cordoned and drained nodes are kept for the operator to remove (0: never). Env: QY_NODE_GC_AFTER_MS */
  nodeGcAfterMs: z.coerce.number().int().min(0).default(86_400_000),
  /** Placements a job may have before it fails for good (requeues after lost nodes count). Env: QY_MAX_ATTEMPTS */
  maxAttempts: z.coerce.number().int().min(1).max(100).default(DEFAULT_MAX_ATTEMPTS),
  /** Time between SIGTERM and SIGKILL when a job is cancelled. Env: QY_CANCEL_GRACE_MS */
  cancelGraceMs: z.coerce.number().int().min(0).default(10_000),
  /** Largest accepted request body. Env: QY_BODY_LIMIT_BYTES */
  bodyLimitBytes: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
  /** JetStream replicas of the streams and buckets (3 in a NATS cluster). Env: QY_STREAM_REPLICAS */
  streamReplicas: z.coerce.number().int().min(1).max(5).default(1),
  /** How long JetStream remembers message ids to drop duplicates. Env: QY_DUPLICATE_WINDOW_MS */
  duplicateWindowMs: ms(120_000),
  /** Priority classes as JSON, name → priority (higher first). Env: QY_PRIORITY_CLASSES */
  priorityClasses: z
    .string()
    .default('{"urgent":1000,"normal":500,"batch":100,"best-effort":0}')
    .transform((text, ctx) => {
      try {
        return z.record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/), z.number().int()).parse(JSON.parse(text));
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be a JSON object of name → integer priority (${(err as Error).message})` });
        return z.NEVER;
      }
    }),
  /** Tenants, operators and their token hashes (YAML). Env: QY_TENANTS_FILE */
  tenantsFile: z.string().min(1).default('configs/tenants.yaml'),
  /** How often the tenants file is checked for a change of content, put in force at once when it validates (a revoked token refused from then on); SIGHUP reloads it at once (0: only on SIGHUP). Env: QY_TENANTS_RELOAD_MS */
  tenantsReloadMs: z.coerce.number().int().min(0).default(10_000),
  /** Waiting this long counts as much as a whole dominant share in the fair-share order (aging). Env: QY_AGING_MS */
  agingMs: ms(DEFAULT_AGING_MS),
  /** Whether a pending job of a higher priority class may stop lower-class jobs to fit. Env: QY_PREEMPTION */
  preemption: bool(true),
  /** A job is preempted at most this many times per hour (the storm guard). Env: QY_PREEMPTION_MAX_PER_HOUR */
  preemptionMaxPerHour: z.coerce.number().int().min(0).default(DEFAULT_PREEMPTION_MAX_PER_HOUR),
  /** Time between SIGTERM and SIGKILL for preempted jobs. Env: QY_PREEMPTION_GRACE_MS */
  preemptionGraceMs: z.coerce.number().int().min(0).default(10_000),
  /**
   * Power caps in kW as JSON, per pool and per zone (`zone:<name>`), e.g. {"intelligent": 800, "zone:qy-a": 500}; a
   * cap may be 24 hourly values (00:00 to 23:00 UTC) to follow the green supply, as in the simulator's cluster
   * files: placement keeps the estimated draw under them and the pending reason says when a cap holds a job;
   * also on dashboards and alerts. Env: QY_POWER_BUDGETS_KW
   */
  powerBudgetsKw: z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      try {
        return powerCapsKwSchema.parse(JSON.parse(text)) as Partial<Record<string, PowerCapKw>>;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be a JSON object of pool or zone:<name> → kW, or → 24 hourly kW values (${(err as Error).message})` });
        return z.NEVER;
      }
    }),
  /** Grid carbon intensity over time (CSV `time,gCO2/kWh`, e.g. `Time,Carbon Intensity`, replayed in a loop); replaces the constant for metered carbon and is the signal of green deferral. Env: QY_CARBON_FILE */
  carbonFile: z.string().min(1).optional(),
  /** The column of QY_CARBON_FILE that holds the intensity in gCO2/kWh, by header, case-insensitive (e.g. `actual` in National Grid's `from,to,forecast,actual,index`); by default the one whose header says carbon or intensity. Env: QY_CARBON_COLUMN */
  carbonColumn: z.string().min(1).optional(),
  /** A live carbon-intensity feed polled over HTTP, with backoff on failure; it takes the place of QY_CARBON_FILE and the constant while fresh. JSON `{"gPerKwh":…,"atMs":…}`, or a provider's answer as it is: National Grid ESO's `https://api.carbonintensity.org.uk/intensity` (or a region's), Electricity Maps' `…/v3/carbon-intensity/latest?zone=…`. Env: QY_CARBON_URL */
  carbonUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** A file of request headers sent with every poll of QY_CARBON_URL and QY_CARBON_FORECAST_URL, one `Name: value` a line (e.g. `auth-token: …` for Electricity Maps): a provider's token kept out of the environment. Env: QY_CARBON_HEADERS_FILE */
  carbonHeadersFile: z.string().min(1).optional(),
  /** A published forecast of the grid's carbon intensity, polled with backoff and blended into the green forecaster, weighed by its own measured error: JSON `{"forecast":[{"atMs":…,"gPerKwh":…}]}`, National Grid ESO's `https://api.carbonintensity.org.uk/intensity/{now}/fw48h` (`{now}` is the time of the poll), or Electricity Maps' `…/v3/carbon-intensity/forecast?zone=…`; QY_CARBON_HEADERS_FILE's headers go with it. Env: QY_CARBON_FORECAST_URL */
  carbonForecastUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** How often QY_CARBON_FORECAST_URL is polled (failures retry sooner, backing off from a second up to this). Env: QY_CARBON_FORECAST_POLL_MS */
  carbonForecastPollMs: ms(1_800_000),
  /** A NATS subject an operator's feed publishes the same readings to (e.g. `qy.green.carbon`). Env: QY_CARBON_SUBJECT */
  carbonSubject: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be a NATS subject without wildcards').optional(),
  /** How often QY_CARBON_URL is polled (failures retry sooner, backing off from a second up to this). Env: QY_CARBON_POLL_MS */
  carbonPollMs: ms(300_000),
  /** A live reading older than this is stale: metering and deferral fall back to QY_CARBON_FILE or the constant times the nodes' non-green share, as without a feed. Env: QY_CARBON_STALE_MS */
  carbonStaleMs: ms(3_600_000),
  /** Hold deferrable jobs for the greenest window before their deadline. Env: QY_GREEN_DEFERRAL */
  greenDeferral: bool(true),
  /**
   * Share of a pool deferred jobs may book in any one step of time: one for every pool (`0.2`), or per pool
   * (`0.2,intelligent=0`: the intelligent pool defers nothing; `general=0.2,intelligent=0.05`; pools not named take
   * the share given without a pool, else 0.2). The default defers nothing in the GPU pool, where deferred work
   * released into green hours kept gangs of whole servers that cannot wait waiting. A share above 0 grows while less than
   * half of the pool's recent work cannot wait (see *Temporal*). Env: QY_GREEN_DEFERRAL_SHARE (default: `0.2,intelligent=0`)
   */
  greenDeferralShare: z
    .union([z.string(), z.number()])
    .default(formatDeferralShares(DEFAULT_DEFERRAL_SHARES))
    .transform((value, ctx) => {
      try {
        return parseDeferralShares(String(value));
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Share of starting now's carbon intensity a later start must save, beyond the forecast's recent error (that far ahead and over the run starting now), before a deferrable job waits for it. Env: QY_GREEN_MIN_GAIN */
  greenMinGain: z.coerce.number().min(0).max(1).default(0.05),
  /** The nodes' mean time between failures in hours, when known: a deferral plan leaves room before a job's latest start to run it again more than once where failures are frequent enough to cut two runs in a row (one rerun's room when unset). Env: QY_GREEN_NODE_MTBF_HOURS (default: unset) */
  greenNodeMtbfHours: z.coerce.number().positive().optional(),
  /** The forecaster deferral plans with (persistence, fitted-persistence, seasonal-day, seasonal-week, profile, blend). Env: QY_GREEN_FORECASTER */
  greenForecaster: z.enum(FORECASTERS).default('blend'),
  /** How often the green signal is observed, and the grid of planned start times (a minute at least: forecasts two days ahead have a point per step). Env: QY_GREEN_STEP_MS */
  greenStepMs: z.coerce.number().int().min(60_000, 'must be at least 60000 (a minute): forecasts two days ahead have a point per step').default(900_000),
  /** Price table for bills (YAML, see configs/prices.yaml); the built-in table when unset. Env: QY_PRICES_FILE (default: built-in) */
  pricesFile: z.string().min(1).optional(),
  /** Power usage effectiveness: facility energy per unit of IT energy, applied when metering. Env: QY_PUE */
  pue: z.coerce.number().min(1).max(5).default(1.25),
  /** Carbon intensity of grid electricity in gCO2/kWh, when no QY_CARBON_FILE is configured. Env: QY_CARBON_INTENSITY_G_PER_KWH */
  carbonIntensityGPerKwh: z.coerce.number().min(0).default(550),
  /**
   * PostgreSQL of the accounting archive (finished jobs, metered usage, audit records), e.g.
   * postgres://qingyang:…@db.example:5432/qingyang. Env: QY_DATABASE_URL (default: — (`npm start`: its own in `.data/pg`))
   */
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  /** Archive records held in memory at most while PostgreSQL is slow or down; beyond, they wait in the scheduler's state. Env: QY_ARCHIVE_BUFFER_RECORDS */
  archiveBufferRecords: z.coerce.number().int().min(100).default(100_000),
  /** InfluxDB 1.x for telemetry (heartbeats, pool power, job events); off when empty. Env: QY_INFLUX_URL */
  influxUrl: z.string().optional(),
  /** InfluxDB database. Env: QY_INFLUX_DATABASE */
  influxDatabase: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('qingyang'),
  /** How long raw telemetry is kept (InfluxQL duration). Env: QY_INFLUX_RAW_RETENTION */
  influxRawRetention: z.string().regex(/^\d+[hdw]$/).default('7d'),
  /** How long the hourly energy history is kept. Env: QY_INFLUX_LONG_RETENTION */
  influxLongRetention: z.string().regex(/^\d+[hdw]$/).default('1820d'),
  /** Telemetry points buffered at most while InfluxDB is slow or down. Env: QY_INFLUX_BUFFER_POINTS */
  influxBufferPoints: z.coerce.number().int().min(100).default(200_000),
  /** How often pool power is written to InfluxDB. Env: QY_INFLUX_POOL_POWER_INTERVAL_MS */
  influxPoolPowerIntervalMs: ms(10_000),
  /** Prometheus (http://host:9090) whose recording rules the web console charts over time, through /v1/series (operators); without it the console shows current values. Env: QY_PROMETHEUS_URL */
  prometheusUrl: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * This replica's name in the leadership lease; unique per replica. A stable one lets a restarted replica
   * take its own lease back at once. Env: QY_REPLICA_ID (default: host name and process id)
   */
  replicaId: z.string().min(1).max(128).default(`${hostname()}-${process.pid}`),
  /** The URL clients reach this replica's API at, told to them by standbys (header X-Qy-Leader). Env: QY_ADVERTISE_URL (default: the listen address) */
  advertiseUrl: z.string().url().optional(),
  /** A standby takes leadership after seeing the lease unchanged this long. Env: QY_LEASE_DURATION_MS */
  leaseDurationMs: ms(15_000),
  /** A leader that could not renew its lease this long stops placing (must be below the lease duration less the retry period). Env: QY_LEASE_RENEW_DEADLINE_MS */
  leaseRenewDeadlineMs: ms(10_000),
  /** How often the leader renews and standbys look at the lease. Env: QY_LEASE_RETRY_MS */
  leaseRetryMs: ms(2_000),
  /** Placement attempts per scheduling cycle before yielding to I/O. Env: QY_CYCLE_ATTEMPTS */
  cycleAttempts: z.coerce.number().int().min(1).default(2_000),
  /** How often the leader of `general` snapshots the scheduler's state into the `qy-snapshots` object store (a rebuild loads the newest and replays only the log after it); at least 20 times as long as the last snapshot took. Env: QY_SNAPSHOT_INTERVAL_MS */
  snapshotIntervalMs: ms(60_000),
  /** Log entries after which a snapshot is taken even before the interval (or the last snapshot's number of lines, when larger). Env: QY_SNAPSHOT_EVERY_ENTRIES */
  snapshotEveryEntries: z.coerce.number().int().min(100).default(50_000),
  /** Entries kept below the compaction point, for replicas still reading them. Env: QY_COMPACTION_MARGIN_ENTRIES */
  compactionMarginEntries: z.coerce.number().int().min(0).default(1_000),
  /** A finished job leaves memory this long after it ended, once the archive holds it (reads then come from the archive). Env: QY_JOB_RETENTION_MS */
  jobRetentionMs: ms(3_600_000),
  /** EASY look-ahead: placement attempts a backfilling pool (`super`) makes at most per cycle, like Slurm's bf_max_job_test; jobs past it wait for the pool's next change. Env: QY_BACKFILL_DEPTH */
  backfillDepth: z.coerce.number().int().min(1).default(DEFAULT_BACKFILL_DEPTH),
  /** This site's name in the federation (with QY_FEDERATION_FILE); unset: a lone site. Env: QY_SITE */
  site: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a site name such as qy-a').optional(),
  /** The federation file (YAML/JSON): sites, pools, links, certified data classes, green and prices. Env: QY_FEDERATION_FILE */
  federationFile: z.string().min(1).optional(),
  /** NATS of the federation link (the account shared across the gateways); QY_NATS_URL when unset. Env: QY_FEDERATION_NATS_URL */
  federationNatsUrl: z.string().min(1).optional(),
  /** NATS user of the federation account. Env: QY_FEDERATION_NATS_USER */
  federationNatsUser: z.string().optional(),
  /** Its password. Env: QY_FEDERATION_NATS_PASSWORD */
  federationNatsPassword: z.string().optional(),
  /** How often this site tells the others its capacity and queue. Env: QY_FEDERATION_SUMMARY_INTERVAL_MS */
  federationSummaryIntervalMs: ms(1_000),
  /** A site silent this long is not routed to, and jobs offered to it but not started are routed again. Env: QY_FEDERATION_SITE_DOWN_AFTER_MS */
  federationSiteDownAfterMs: ms(5_000),
  /**
   * How long the claim of a job routed away (and the Idempotency-Key that made it) is kept after it was last
   * written (the executor's start, or a cancel): its home answers for the job that long, the site that ran
   * it for as long as its archive keeps it. Claims still offered are renewed. Env: QY_FEDERATION_CLAIM_RETENTION_MS
   */
  federationClaimRetentionMs: ms(30 * 24 * 3_600_000),
});
export type SchedulerConfig = z.infer<typeof schedulerConfigSchema>;

/** Environment variable of each setting. */
export const SCHEDULER_ENV: Record<keyof SchedulerConfig, string> = {
  ...NATS_AUTH_ENV,
  natsUrl: 'QY_NATS_URL',
  httpHost: 'QY_HTTP_HOST',
  httpPort: 'QY_HTTP_PORT',
  logLevel: 'QY_LOG_LEVEL',
  logPretty: 'QY_LOG_PRETTY',
  heartbeatIntervalMs: 'QY_HEARTBEAT_INTERVAL_MS',
  suspectAfterMs: 'QY_SUSPECT_AFTER_MS',
  downAfterMs: 'QY_DOWN_AFTER_MS',
  nodeGcAfterMs: 'QY_NODE_GC_AFTER_MS',
  maxAttempts: 'QY_MAX_ATTEMPTS',
  cancelGraceMs: 'QY_CANCEL_GRACE_MS',
  bodyLimitBytes: 'QY_BODY_LIMIT_BYTES',
  streamReplicas: 'QY_STREAM_REPLICAS',
  duplicateWindowMs: 'QY_DUPLICATE_WINDOW_MS',
  priorityClasses: 'QY_PRIORITY_CLASSES',
  tenantsFile: 'QY_TENANTS_FILE',
  tenantsReloadMs: 'QY_TENANTS_RELOAD_MS',
  agingMs: 'QY_AGING_MS',
  preemption: 'QY_PREEMPTION',
  preemptionMaxPerHour: 'QY_PREEMPTION_MAX_PER_HOUR',
  preemptionGraceMs: 'QY_PREEMPTION_GRACE_MS',
  cycleAttempts: 'QY_CYCLE_ATTEMPTS',
  backfillDepth: 'QY_BACKFILL_DEPTH',
  snapshotIntervalMs: 'QY_SNAPSHOT_INTERVAL_MS',
  snapshotEveryEntries: 'QY_SNAPSHOT_EVERY_ENTRIES',
  compactionMarginEntries: 'QY_COMPACTION_MARGIN_ENTRIES',
  jobRetentionMs: 'QY_JOB_RETENTION_MS',
  powerBudgetsKw: 'QY_POWER_BUDGETS_KW',
  databaseUrl: 'QY_DATABASE_URL',
  archiveBufferRecords: 'QY_ARCHIVE_BUFFER_RECORDS',
  influxUrl: 'QY_INFLUX_URL',
  influxDatabase: 'QY_INFLUX_DATABASE',
  influxRawRetention: 'QY_INFLUX_RAW_RETENTION',
  influxLongRetention: 'QY_INFLUX_LONG_RETENTION',
  influxBufferPoints: 'QY_INFLUX_BUFFER_POINTS',
  influxPoolPowerIntervalMs: 'QY_INFLUX_POOL_POWER_INTERVAL_MS',
  prometheusUrl: 'QY_PROMETHEUS_URL',
  carbonIntensityGPerKwh: 'QY_CARBON_INTENSITY_G_PER_KWH',
  pue: 'QY_PUE',
  pricesFile: 'QY_PRICES_FILE',
  carbonFile: 'QY_CARBON_FILE',
  carbonColumn: 'QY_CARBON_COLUMN',
  carbonUrl: 'QY_CARBON_URL',
  carbonHeadersFile: 'QY_CARBON_HEADERS_FILE',
  carbonForecastUrl: 'QY_CARBON_FORECAST_URL',
  carbonForecastPollMs: 'QY_CARBON_FORECAST_POLL_MS',
  carbonSubject: 'QY_CARBON_SUBJECT',
  carbonPollMs: 'QY_CARBON_POLL_MS',
  carbonStaleMs: 'QY_CARBON_STALE_MS',
  greenDeferral: 'QY_GREEN_DEFERRAL',
  greenStepMs: 'QY_GREEN_STEP_MS',
  greenForecaster: 'QY_GREEN_FORECASTER',
  greenDeferralShare: 'QY_GREEN_DEFERRAL_SHARE',
  greenMinGain: 'QY_GREEN_MIN_GAIN',
  greenNodeMtbfHours: 'QY_GREEN_NODE_MTBF_HOURS',
  replicaId: 'QY_REPLICA_ID',
  advertiseUrl: 'QY_ADVERTISE_URL',
  leaseDurationMs: 'QY_LEASE_DURATION_MS',
  leaseRenewDeadlineMs: 'QY_LEASE_RENEW_DEADLINE_MS',
  leaseRetryMs: 'QY_LEASE_RETRY_MS',
  site: 'QY_SITE',
  federationFile: 'QY_FEDERATION_FILE',
  federationNatsUrl: 'QY_FEDERATION_NATS_URL',
  federationNatsUser: 'QY_FEDERATION_NATS_USER',
  federationNatsPassword: 'QY_FEDERATION_NATS_PASSWORD',
  federationSummaryIntervalMs: 'QY_FEDERATION_SUMMARY_INTERVAL_MS',
  federationSiteDownAfterMs: 'QY_FEDERATION_SITE_DOWN_AFTER_MS',
  federationClaimRetentionMs: 'QY_FEDERATION_CLAIM_RETENTION_MS',
};

/** The lease timings of a configuration. */
export function leaseTimingsOf(config: SchedulerConfig): { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number } {
  return { leaseDurationMs: config.leaseDurationMs, renewDeadlineMs: config.leaseRenewDeadlineMs, retryPeriodMs: config.leaseRetryMs };
}

/** Reads the configuration from environment variables; throws one error naming every bad variable. */
export function loadSchedulerConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof SchedulerConfig, unknown>> = {}): SchedulerConfig {
  const config = loadEnvConfig(schedulerConfigSchema, SCHEDULER_ENV, env, overrides);
  if ((config.site === undefined) !== (config.federationFile === undefined)) throw new ConfigError('invalid configuration: QY_SITE and QY_FEDERATION_FILE go together (both set: a federated site; neither: a lone one)');
  if (config.carbonHeadersFile !== undefined && config.carbonUrl === undefined && config.carbonForecastUrl === undefined) throw new ConfigError('invalid configuration: QY_CARBON_HEADERS_FILE names the headers of QY_CARBON_URL and QY_CARBON_FORECAST_URL, neither of which is set');
  if (config.downAfterMs < config.suspectAfterMs) throw new ConfigError('invalid configuration: QY_DOWN_AFTER_MS must not be smaller than QY_SUSPECT_AFTER_MS (equal: no suspect phase)');
  if (config.nodeGcAfterMs > 0 && config.nodeGcAfterMs < config.downAfterMs) throw new ConfigError('invalid configuration: QY_NODE_GC_AFTER_MS must be 0 (never) or not smaller than QY_DOWN_AFTER_MS: a node is forgotten only once it is down');
  try {
    assertSafeTimings(leaseTimingsOf(config));
  } catch (err) {
    throw new ConfigError(`invalid configuration: QY_LEASE_RETRY_MS, QY_LEASE_RENEW_DEADLINE_MS, QY_LEASE_DURATION_MS: ${(err as Error).message}`);
  }
  return config;
}
