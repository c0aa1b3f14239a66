import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_POLICY, type Policy } from '../src/core';
import { DEFAULT_PRICE_TABLE, loadPriceTable, type PriceTable } from '../src/billing';
import { taskKey, type Pool } from '../src/protocol';
import { ArchiveMetrics, openArchive, type Archive } from '../src/archive';
import { AuditLog } from '../src/store/audit-log';
import { JetStreamPublisher } from '../src/store/js-publisher';
import { JobLog } from '../src/store/job-log';
import { connectNats, ensureStreams, openBucket } from '../src/store/nats';
import type { Logger } from '../src/telemetry/logger';
import { SchedulerMetrics } from '../src/telemetry/metrics';
import { systemClock, type Clock } from '../src/time';
import { AgentGateway } from './agent-gateway';
import type { SchedulerConfig } from './config';
import { SchedulerCycle } from './cycle';
import { GreenSignal } from './green';
import { JobStore } from './job-store';
import { Leadership } from './leadership';
import { meterReport, type MeteringSettings } from './metering';
import { schedulerMetricsSource } from './metrics-source';
import { NodeRegistry } from './nodes';
import { QuotaWatch } from './quota-watch';
import { KEEPER_POOL, StateKeeper } from './state-keeper';
import { AuditArchiver } from './audit-archiver';
import { SnapshotStore } from '../src/store/snapshot-store';
import { GreenHistoryStore } from '../src/store/green-history';
import type { AttemptRecord, Effect, JobRecord } from './state/job-table';
import { TelemetrySink } from './telemetry-sink';
import { TenantDirectory, loadTenantsFile } from './tenants';
import { TenantsReloader, type ReloadTrigger } from './tenants-reload';
import { federationFileSchema, type FederationFile } from '../src/protocol';
import { loadDataFile } from '../src/files';
import { fromSetting } from '../src/lifecycle';
import { BucketOpener, DatasetStore } from '../src/store/federation-buckets';
import { FederationLink } from './federation/link';

export { NotLeaderError, leaseKeyOf } from './leadership';

/**
 * The scheduler service, assembled from parts with one job each:
 * - Leadership: a lease and a term per pool; acts only for the pools it leads.
 * - JobStore: every job in memory, kept by the job log (QY_JOBS): rebuild, apply, commit.
 * - SchedulerCycle: drives the scheduling pipeline of src/core (the one the simulator drives too).
 * - AgentGateway: registrations, heartbeats and liveness, work sent to agents (QY_ASSIGN).
 * - GreenSignal, TelemetrySink, QuotaWatch: the green signal and deferral, InfluxDB, operators' quotas.
 *
 * This class wires them, rebuilds state from the log on start and after any doubt (a failed write, a NATS
 * reconnect, a change of leadership), and carries out the effects of logged decisions. The state objects
 * are made once and reset on rebuild, never swapped, so every part holds them for good.
 */
export class Scheduler {
  readonly tenants: TenantDirectory;
  /** Puts a changed tenants file in force without a restart (see reloadTenants). */
  private readonly tenantsReloader: TenantsReloader;
  readonly prices: PriceTable;
  readonly metering: MeteringSettings;
  readonly metrics: SchedulerMetrics;
  readonly leadership: Leadership;
  readonly store: JobStore;
  readonly green: GreenSignal;
  readonly cycle: SchedulerCycle;
  readonly telemetry: TelemetrySink;
  nc!: NatsConnection;
  registry!: NodeRegistry;
  gateway!: AgentGateway;
  audit!: AuditLog;
  quotas!: QuotaWatch;
  /** Feeds the audit chain (QY_AUDIT) into the archive, when there is one. */
  auditArchiver: AuditArchiver | undefined;
  /** The accounting archive (PostgreSQL), when QY_DATABASE_URL is set: finished jobs, usage and audit records. */
  readonly archive: Archive | undefined;
  /** State is rebuilt and followed: reads are served. */
  ready = false;
  notReadyReason = 'starting';
  keeper!: StateKeeper;
  /** Federation (QY_SITE and QY_FEDERATION_FILE): the file, and the link to the other sites once started. */
  readonly federationFile: FederationFile | undefined;
  federation: FederationLink | undefined;
  datasetStore!: DatasetStore;
  private fedNc: NatsConnection | undefined;
  private snapshots!: SnapshotStore;
  private jsm!: JetStreamManager;
  private jobLog!: JobLog;
  private publisher!: JetStreamPublisher;
  private rebuilding: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly config: SchedulerConfig,
    readonly log: Logger,
    readonly policy: Policy = DEFAULT_POLICY,
    readonly clock: Clock = systemClock,
  ) {
    this.tenants = new TenantDirectory(fromSetting('QY_TENANTS_FILE', () => loadTenantsFile(config.tenantsFile)));
    this.tenantsReloader = new TenantsReloader(config.tenantsFile, this.tenants, { log: this.log, clock, pollMs: config.tenantsReloadMs, audit: (entry) => this.audit?.append(entry) ?? Promise.resolve() });
    this.prices = config.pricesFile ? fromSetting('QY_PRICES_FILE', () => loadPriceTable(config.pricesFile!)) : DEFAULT_PRICE_TABLE;
    this.federationFile = config.federationFile ? fromSetting('QY_FEDERATION_FILE', () => loadDataFile(config.federationFile!, federationFileSchema)) : undefined;
    if (this.federationFile && !this.federationFile.sites.some((s) => s.name === config.site)) {
      throw new Error(`invalid configuration: QY_SITE ${config.site} is not a site of ${config.federationFile} (${this.federationFile.sites.map((s) => s.name).join(', ')})`);
    }
    this.metrics = new SchedulerMetrics(schedulerMetricsSource(this));
    this.leadership = new Leadership(config, log, {
      jobLog: () => this.jobLog,
      rebuild: (reason) => this.rebuild(reason),
      rebuilding: () => this.rebuilding,
      tookUp: (pool, term) => {
        this.metrics.leaderChanges.inc({ pool });
        this.log.info({ pool, term }, 'leading the pool');
        // The replica that leads `general` stores the green signal's history: at once, so what it replayed and observed is kept.
        if (pool === KEEPER_POOL) this.green.saveNow();
      },
    });
    this.store = new JobStore(
      () => this.jobLog,
      this.leadership,
      log,
      this.metrics,
      {
        runEffects: (effects) => this.runEffects(effects),
        appendFailed: (reason) => void this.rebuild(reason),
        relieved: () => this.cycle.relieved(),
      },
      config.preemptionGraceMs,
    );
    this.green = new GreenSignal(config, this.store.cluster, clock, this.store.pending, { log: this.log.child({ component: 'green' }), registry: this.metrics.registry });
    this.metering = { pue: config.pue, carbonAt: (atMs) => this.green.carbonAt(atMs) };
    this.cycle = new SchedulerCycle(this.store, this.leadership, this.tenants, config, policy, this.metrics, clock, this.green.planner);
    this.telemetry = new TelemetrySink(config, this.leadership, this.metrics, clock, log);
    if (config.databaseUrl) {
      const archiveMetrics = new ArchiveMetrics(this.metrics.registry, () => this.archive!.writer);
      this.archive = openArchive({ url: config.databaseUrl, log: log.child({ component: 'archive' }), writer: { maxBufferedRecords: config.archiveBufferRecords, hooks: archiveMetrics.hooks } });
    }
  }

  /** Connects, rebuilds state from the job log, and starts serving agents. */
  async start(): Promise<void> {
    const { config } = this;
    this.nc = await connectNats(config.natsUrl, 'qy-scheduler', this.log, { auth: config });
    this.jsm = await ensureStreams(this.nc, { replicas: config.streamReplicas, duplicateWindowMs: config.duplicateWindowMs });
    this.publisher = new JetStreamPublisher(this.nc);
    this.jobLog = new JobLog(this.nc, this.log, this.publisher);
    this.registry = new NodeRegistry(await openBucket(this.nc, 'nodes', config.streamReplicas), this.log);
    this.quotas = new QuotaWatch(await openBucket(this.nc, 'quotas', config.streamReplicas), this.tenants, this.log, () => {
      for (const pool of this.leadership.ledPools) this.cycle.retry(pool);
    });
    await this.quotas.start();
    this.audit = new AuditLog(this.nc, this.log, () => this.clock.now(), this.publisher);
    await this.audit.init();
    this.tenantsReloader.start();
    this.auditArchiver = this.archive && AuditArchiver.start({ audit: this.audit, writer: this.archive.writer, log: this.log.child({ component: 'audit-archiver' }) });
    this.snapshots = await SnapshotStore.open(this.nc, config.streamReplicas);
    // The signal observed before this start, into the forecaster (stored by the replica that leads `general`,
    // as the state keeper is): deferral need not wait days for its errors to be measured again.
    const greenHistory = new GreenHistoryStore(await openBucket(this.nc, 'green', config.streamReplicas), this.log);
    await this.green.restore({ store: greenHistory, saves: () => this.leadership.leads(KEEPER_POOL) });
    if (this.federationFile) {
      // The federation link: a second connection, to the account the sites share across the gateways.
      this.fedNc = await connectNats(config.federationNatsUrl ?? config.natsUrl, 'qy-federation', this.log, { auth: { natsUser: config.federationNatsUser, natsPassword: config.federationNatsPassword } });
      this.federation = new FederationLink({ site: config.site!, federation: this.federationFile, nc: this.fedNc, replicas: config.streamReplicas, summaryIntervalMs: config.federationSummaryIntervalMs, siteDownAfterMs: config.federationSiteDownAfterMs, claimRetentionMs: config.federationClaimRetentionMs, clock: this.clock, log: this.log.child({ component: 'federation' }) });
    }
    this.datasetStore = new DatasetStore(new BucketOpener(this.fedNc ?? this.nc, config.streamReplicas), config.site);
    this.keeper = new StateKeeper({
      store: this.store,
      leadership: this.leadership,
      jobLog: () => this.jobLog,
      snapshots: () => this.snapshots,
      archive: this.archive,
      audit: () => this.audit,
      planner: this.green.planner,
      config,
      registry: this.metrics.registry,
      clock: this.clock,
      log: this.log.child({ component: 'state' }),
    });
    this.gateway = new AgentGateway({
      nc: this.nc,
      jsm: this.jsm,
      publisher: this.publisher,
      registry: this.registry,
      store: this.store,
      leadership: this.leadership,
      cycle: this.cycle,
      telemetry: this.telemetry,
      holdStart: (job, attempt) => this.holdStart(job, attempt),
      config,
      metrics: this.metrics,
      clock: this.clock,
      log: this.log,
      audit: () => this.audit,
    });
    await this.rebuild('start');
    this.keeper.start();
    this.green.start(this.nc);
    this.gateway.start();
    this.telemetry.start(this.registry);
    void this.watchConnection();
  }

  /** Joins the leader elections of the three pools, advertising the API's address. */
  async campaign(advertiseUrl: string): Promise<void> {
    await this.leadership.campaign(await openBucket(this.nc, 'leases', this.config.streamReplicas), advertiseUrl);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.notReadyReason = 'shutting down';
    this.tenantsReloader.stop();
    await this.leadership.stop();
    this.keeper?.stop();
    this.registry?.stopFollowing();
    this.quotas?.stop();
    this.gateway?.stop();
    this.federation?.stop();
    this.cycle.stop();
    this.green.stop();
    await this.telemetry.stop();
    await this.store.closeFeed();
    this.publisher?.close();
    await this.auditArchiver?.stop();
    await this.nc?.drain().catch(() => undefined);
    await this.fedNc?.drain().catch(() => undefined);
    await this.archive?.close();
  }

  /** Reads QY_TENANTS_FILE again and puts it in force if it validates (SIGHUP); returns whether it did. */
  reloadTenants(trigger: ReloadTrigger = 'signal'): boolean {
    return this.tenantsReloader.reload(trigger);
  }

  /**
   * Throws away in-memory state and rebuilds it from the KV node registry and the job log, then follows the
   * log. It takes up the pools whose elections it has won (and still holds): their jobs are reconciled with
   * the agents and placed from then on; other pools' decisions are applied as their leaders log them.
   */
  rebuild(reason: string): Promise<void> {
    this.rebuilding ??= (async () => {
      this.ready = false;
      this.leadership.clear();
      this.metrics.rebuilds.inc();
      this.notReadyReason = `rebuilding state from the job log (${reason})`;
      this.log.info({ reason }, 'rebuilding state from the job log');
      const startedMs = Date.now();
      // Decisions still in flight land first, so the replay below holds them.
      await this.store.settle();
      for (;;) {
        let step = 'closing the feeds';
        try {
          await this.store.closeFeed();
          this.registry.stopFollowing();
          this.store.reset();
          this.cycle.reset();
          step = 'loading the node registry';
          await this.registry.load(this.clock.now());
          this.registry.attach(this.store.cluster);
          step = 'loading the newest state snapshot';
          const snapshot = await this.keeper.newestSnapshot();
          if (snapshot) {
            const requeued = await this.store.restore(snapshot);
            this.green.planner.restore(snapshot.deferrals);
            if (snapshot.workMix) this.green.planner.restoreMix(snapshot.workMix);
            if (requeued.length > 0) this.log.warn({ jobs: requeued }, 'placements in the snapshot no longer fit the registered nodes; those jobs wait again');
          }
          step = 'replaying the job log';
          const { entries, lastSeq } = await this.store.replay();
          // The planner's work mix (see bookingShare) goes on from the snapshot's, or this replica's own when newer,
          // with the jobs of the last week that memory holds and it has not counted.
          this.green.planner.warm([...this.store.table.jobs.values()].map((j) => j.sched), this.clock.now());
          this.leadership.activateWon();
          step = 'following the job log';
          await this.store.follow(lastSeq);
          step = 'following the node registry';
          await this.registry.follow(() => this.clock.now());
          this.gateway.reconcile();
          // Usage reported while the scheduler was down, or just before it stopped, is metered now.
          for (const report of this.store.usage.unmetered()) if (this.store.leadsJob(report.jobId)) this.meterTask(report);
          this.log.info({ leads: this.leadership.ledPools, snapshotSeq: snapshot?.seq, entries, lastSeq, jobs: this.store.table.jobs.size, pending: this.store.pending.size, nodes: this.registry.entries.size, ms: Date.now() - startedMs }, 'state rebuilt; ready');
          break;
        } catch (err) {
          this.leadership.clear();
          if (this.stopped) return;
          this.log.error({ err, step }, `rebuild failed while ${step}; retrying`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      this.ready = true;
      for (const pool of this.leadership.ledPools) this.cycle.retry(pool);
    })().finally(() => (this.rebuilding = undefined));
    return this.rebuilding;
  }

  /** Carries out what applying an entry asked for: work for agents, retries of waiting jobs, metering, metrics. */
  private runEffects(effects: Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'assign': {
          this.green.planner.forget(effect.job.id);
          if (!this.holdStart(effect.job, effect.attempt)) this.gateway.sendAssignments(effect.job, effect.attempt);
          this.telemetry.jobEvent(effect.job, 'placed', { attempt: effect.attempt.attempt, wait_seconds: Math.max(0, effect.attempt.placedAtMs - effect.job.queuedAtMs) / 1000 });
          break;
        }
        case 'stop-tasks':
          this.gateway.sendCancels(effect.job, effect.attempt, effect.reason, effect.graceMs);
          break;
        case 'stray-task':
          this.gateway.cancelStray(effect.nodeId, effect.jobId, effect.attemptId, [effect.taskIndex]);
          break;
        case 'capacity-freed':
          this.cycle.retry(effect.job.spec.pool);
          break;
        case 'job-started':
          if (effect.attempt.attempt === 1) this.metrics.submitToRunning.observe({ pool: effect.job.spec.pool }, Math.max(0, effect.atMs - effect.job.submittedAtMs) / 1000);
          this.telemetry.jobEvent(effect.job, 'started', { attempt: effect.attempt.attempt });
          break;
        case 'job-requeued':
          this.metrics.jobsRequeued.inc({ pool: effect.job.spec.pool, cause: effect.cause });
          this.telemetry.jobEvent(effect.job, 'requeued', { cause: effect.cause });
          break;
        case 'meter':
          this.meterTask(effect.report);
          break;
        case 'job-ended':
          this.green.planner.forget(effect.job.id);
          this.metrics.jobsFinished.inc({ pool: effect.job.spec.pool, tenant: effect.job.tenant, outcome: effect.job.state });
          this.telemetry.jobEvent(effect.job, 'finished', { outcome: effect.job.state, attempts: effect.job.attempts.length });
          this.log.debug({ jobId: effect.job.id, state: effect.job.state }, 'job ended');
          break;
      }
    }
  }

  /**
   * A job another site routed here starts only once the home's claim says this site runs it: the federation
   * link takes the attempt over and sends its work when the claim is won. False: send it now.
   */
  private holdStart(job: JobRecord, attempt: AttemptRecord): boolean {
    if (!job.homeSite || !this.federation || this.federation.mayStart(job.id)) return false;
    this.federation.gate(job.id, job.homeSite, () => job.current === attempt && !attempt.stop && this.store.leadsJob(job.id), () => this.gateway.sendAssignments(job, attempt, (t) => t.state === 'assigned'));
    return true;
  }

  /** Meters a task's reported usage and records it in the job log (once per task). */
  private meterTask(report: Parameters<typeof meterReport>[0]): void {
    const job = this.store.table.get(report.jobId);
    if (!job || this.store.usage.has(taskKey(report))) return;
    const usage = meterReport(report, { tenant: job.tenant, pool: job.spec.pool, billingClass: this.tenants.tenant(job.tenant)?.billingClass ?? 'standard' }, this.metering);
    // No message id: a second copy after a retried publish is harmless, the ledger keeps one record per task.
    this.store.commitWhenOpen({ type: 'metered', jobId: job.id, usage, atMs: this.clock.now() });
  }

  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.stopped) return;
      if (s.type === 'disconnect') {
        this.ready = false;
        this.leadership.clear();
        this.notReadyReason = 'disconnected from NATS';
      } else if (s.type === 'reconnect') void this.rebuild('reconnected to NATS');
    }
  }

  /** Whether this replica leads the pool (shorthand for the HTTP layer and tests). */
  leads(pool: Pool): boolean {
    return this.leadership.leads(pool);
  }
}
