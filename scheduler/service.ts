import { jetstream, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ClusterState, DEFAULT_POLICY, PendingQueue, type Placement, type Policy, type PreparedJobWithCache } from '../src/core';
import {
  POOLS,
  heartbeatSchema,
  nodeIdOfSubject,
  registrationSchema,
  subjects,
  type AgentWork,
  type Assignment,
  type JobEvent,
  type Pool,
  type RegistrationReply,
} from '../src/protocol';
import { JetStreamPublisher } from '../src/store/js-publisher';
import { JobLog, TermFence, type LogEntry } from '../src/store/job-log';
import { LeaderElector, type LeaseRecord } from '../src/store/lease';
import { AuditLog } from '../src/store/audit-log';
import { connectNats, ensureAgentConsumer, ensureStreams, openBucket, retryTimeouts } from '../src/store/nats';
import type { KV } from '@nats-io/kv';
import type { Logger } from '../src/telemetry/logger';
import { SchedulerMetrics } from '../src/telemetry/metrics';
import { TelemetryWriter } from '../src/telemetry/influx-writer';
import { schedulerMetricsSource } from './metrics-source';
import { leaseTimingsOf, type SchedulerConfig } from './config';
import { NodeRegistry, type NodeEntry } from './nodes';
import { SchedulingCycle } from './scheduling';
import { JobTable, type AttemptRecord, type Effect, type JobRecord } from './state/job-table';
import { UsageLedger, meterReport, usageKey, type MeteringSettings } from './metering';
import { DEFAULT_PRICE_TABLE, loadPriceTable, type PriceTable } from '../src/billing';
import { DAY_MS, loadSeries, persistenceForecaster, supplyUnits, type LiveForecaster, type Series } from '../src/green';
import { GreenDeferral } from './green-deferral';
import { TenantDirectory, loadTenantsFile, quotasSchema } from './tenants';

/** Appends in flight above which scheduling cycles pause until JetStream catches up. */
const MAX_IN_FLIGHT = 4_096;

/** The key of a pool's leadership lease in the qy-leases bucket. */
export function leaseKeyOf(pool: Pool): string {
  return `scheduler-${pool}`;
}

/** A write refused or undone because this replica does not (or no longer) lead the pool it concerns. */
export class NotLeaderError extends Error {
  constructor(
    readonly pool: Pool | undefined,
    readonly leader: LeaseRecord | undefined,
  ) {
    const what = pool ? `pool ${pool}` : 'this';
    super(leader && !leader.released ? `the leader of ${what} is ${leader.holder} at ${leader.address} (term ${leader.term})` : `no leader of ${what} is elected yet; retry shortly`);
  }
}

/**
 * The scheduler: keeps the cluster and every job in memory, rebuilt from the job log (QY_JOBS) on start
 * and after any doubt (a failed write, a NATS reconnect); places pending jobs with the core; writes each
 * decision to the log and sends work to agents (QY_ASSIGN); follows agents' status reports and heartbeats.
 *
 * Every decision is applied in memory at the moment it is appended, in append order, so the log replays
 * to the same state. A failed append means memory and log may differ: the scheduler then rebuilds from the log.
 *
 * Several replicas may run. Each pool has its leader, the replica holding the pool's lease in the
 * qy-leases bucket; one replica may lead several pools. Every replica follows the whole job log, so it
 * serves every read; it acts (places, sends work, answers agents, accepts writes) only for the pools it
 * leads, and refuses the other writes with the leader's address. On election a replica writes a term marker
 * for the pool, rebuilds its state from the log and only then places; a leader that cannot renew stops
 * placing the pool at once, before any standby may take over.
 */
export class Scheduler {
  cluster = new ClusterState();
  pending = new PendingQueue();
  table = new JobTable(this.cluster, this.pending);
  /** Metered usage of every task, from the job log. */
  usage = new UsageLedger();
  readonly metering: MeteringSettings;
  /** Prices for bills. */
  readonly prices: PriceTable;
  /** The grid's carbon intensity over time, when a file gives it. */
  private readonly carbon: Series | undefined;
  /** Forecasts the green signal from what has been observed of it (same time yesterday, blended with the latest). */
  readonly greenForecaster: LiveForecaster;
  readonly deferral: GreenDeferral;
  private greenTimer: NodeJS.Timeout | undefined;
  registry!: NodeRegistry;
  readonly tenants: TenantDirectory;
  audit!: AuditLog;
  quotasKv!: KV;
  readonly scheduling = new SchedulingCycle(this);
  readonly metrics = new SchedulerMetrics(schedulerMetricsSource(this));
  nc!: NatsConnection;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private jobLog!: JobLog;
  private publisher!: JetStreamPublisher;
  private statusFeed: ConsumerMessages | undefined;
  private readonly subs: Subscription[] = [];
  private readonly knownAgents = new Set<string>();
  private readonly strayCancelAtMs = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private poolPowerTimer: NodeJS.Timeout | undefined;
  telemetry: TelemetryWriter | undefined;
  private cycleQueued = false;
  private cyclePaused = false;
  private inFlight = 0;
  private rebuilding: Promise<void> | undefined;
  private stopped = false;
  /** State is rebuilt and followed: reads are served. */
  ready = false;
  notReadyReason = 'starting';
  /**
   * The pools this replica leads, with its term in each, once its state is rebuilt as their leader: it
   * places their jobs and takes their writes. The term goes with its events and its work for agents.
   */
  readonly led = new Map<Pool, number>();
  /** Terms won in elections, taken up by the next rebuild (while the elector still holds the lease). */
  private readonly won = new Map<Pool, number>();
  private readonly electors = new Map<Pool, LeaderElector>();
  /** Fences off deposed leaders' late writes while the job log is read. */
  private fence = new TermFence();
  /** Serialises becoming leader and stepping down. */
  private transition: Promise<void> = Promise.resolve();
  private stopFollowingNodes: (() => void) | undefined;
  private stopWatchingQuotas: (() => void) | undefined;
  private advertiseUrl = '';

  constructor(
    readonly config: SchedulerConfig,
    readonly log: Logger,
    readonly policy: Policy = DEFAULT_POLICY,
    readonly now: () => number = Date.now,
  ) {
    this.tenants = new TenantDirectory(loadTenantsFile(config.tenantsFile));
    this.carbon = config.carbonFile ? loadSeries(config.carbonFile) : undefined;
    if (this.carbon && this.carbon.kind !== 'carbon') throw new Error(`${config.carbonFile}: expected a carbon-intensity series (a column named like "Carbon Intensity")`);
    const carbon = this.carbon;
    this.metering = { pue: config.pue, carbonAt: carbon ? (atMs) => carbon.valueAt(atMs) : () => config.carbonIntensityGPerKwh };
    this.prices = config.pricesFile ? loadPriceTable(config.pricesFile) : DEFAULT_PRICE_TABLE;
    this.greenForecaster = persistenceForecaster({ stepMs: config.greenStepMs });
    const supplyOf = (pool: Pool) => supplyUnits(pool, { nodes: this.cluster.nodesOf(pool).length, ...this.cluster.capacityOf(pool) });
    this.deferral = new GreenDeferral({ stepMs: config.greenStepMs, forecaster: this.greenForecaster, bookShare: config.greenDeferralShare, supplyOf }, now, (pools) => {
      for (const pool of pools) this.pending.markDirty(pool);
      this.requestCycle();
    });
  }

  /**
   * The green signal deferral plans against, in gCO2/kWh: the grid's intensity from QY_CARBON_FILE when one
   * is configured; otherwise the constant intensity times the share of the nodes' power that is not green
   * (their agents' green share), so that days of wind and sun are what deferral waits for.
   */
  greenSignalAt(atMs: number): number {
    if (this.carbon) return this.carbon.valueAt(atMs);
    let share = 0;
    let nodes = 0;
    for (const node of this.cluster.nodes()) {
      if (node.state !== 'ready') continue;
      share += node.greenShare;
      nodes++;
    }
    return (1 - (nodes > 0 ? share / nodes : 0)) * this.config.carbonIntensityGPerKwh;
  }

  /** Observes the green signal every step; a carbon file also gives the day before, so forecasts start at once. */
  private startGreenSignal(): void {
    const step = this.config.greenStepMs;
    const now = this.now();
    if (this.carbon) for (let t = now - DAY_MS; t < now; t += step) this.greenForecaster.observe(t, this.greenSignalAt(t));
    this.greenForecaster.observe(now, this.greenSignalAt(now));
    this.greenTimer = setInterval(() => {
      const t = this.now();
      this.greenForecaster.observe(t, this.greenSignalAt(t));
    }, step);
    this.greenTimer.unref();
  }

  /** Connects, rebuilds state from the job log, and starts serving agents. */
  async start(): Promise<void> {
    this.nc = await connectNats(this.config.natsUrl, 'qy-scheduler', this.log, { auth: this.config });
    this.jsm = await ensureStreams(this.nc, { replicas: this.config.streamReplicas, duplicateWindowMs: this.config.duplicateWindowMs });
    this.js = jetstream(this.nc);
    this.publisher = new JetStreamPublisher(this.nc);
    this.jobLog = new JobLog(this.nc, this.log, this.publisher);
    this.registry = new NodeRegistry(await openBucket(this.nc, 'nodes', this.config.streamReplicas), this.log);
    this.quotasKv = await openBucket(this.nc, 'quotas', this.config.streamReplicas);
    await this.loadQuotaOverrides();
    this.audit = new AuditLog(this.nc, this.log, this.now);
    await this.audit.init();
    await this.rebuild('start');
    this.startGreenSignal();
    this.subs.push(
      this.nc.subscribe(subjects.allRegister, {
        callback: (err, msg) => {
          if (!err) void this.onRegister(msg.subject, msg.data, (r) => msg.respond(JSON.stringify(r)));
        },
      }),
    );
    this.subs.push(
      this.nc.subscribe(subjects.allHeartbeats, {
        callback: (err, msg) => {
          if (!err) this.onHeartbeat(msg.subject, msg.data);
        },
      }),
    );
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.min(250, this.config.suspectAfterMs / 4)));
    this.startTelemetry();
    void this.watchConnection();
  }

  /**
   * Joins the leader elections of the three pools (once the API listens, so the leases can say where).
   * Resolves after the first look at each lease: a replica that takes leases at once leads them by then.
   */
  async campaign(advertiseUrl: string): Promise<void> {
    this.advertiseUrl = this.config.advertiseUrl ?? advertiseUrl;
    const kv = await openBucket(this.nc, 'leases', this.config.streamReplicas);
    for (const pool of POOLS) {
      const elector = new LeaderElector(
        kv,
        leaseKeyOf(pool),
        { holder: this.config.replicaId, address: this.advertiseUrl },
        leaseTimingsOf(this.config),
        { elected: () => this.onElected(), deposed: (reason) => this.onDeposed(pool, reason) },
        this.log.child({ component: 'election', pool }),
        this.now,
      );
      this.electors.set(pool, elector);
    }
    await Promise.all([...this.electors.values()].map((e) => e.start()));
    await this.transition;
  }

  /** Whether this replica places the pool's jobs and takes its writes now. */
  leads(pool: Pool): boolean {
    return this.led.has(pool);
  }

  /**
   * Checks the leases of the pools this replica leads against the clock before it acts as their leader: one
   * past its renew deadline is given up now, even if its timer has not fired (the process was paused).
   */
  confirmLeadership(): void {
    // A lease past its deadline is given up, and giving it up (onDeposed) takes the pool out of `led`.
    for (const pool of [...this.led.keys()]) this.electors.get(pool)?.confirm();
  }

  /** Whether this replica leads the pool of a job it knows. */
  private leadsJob(jobId: string): boolean {
    const pool = this.table.get(jobId)?.spec.pool;
    return pool !== undefined && this.led.has(pool);
  }

  /** Whether this replica leads every pool (the usual case with one replica, or after a failover). */
  get leadsAll(): boolean {
    return this.led.size === POOLS.length;
  }

  /** A pool's leader as this replica last saw its lease. */
  leaderOf(pool: Pool): LeaseRecord | undefined {
    return this.electors.get(pool)?.leader;
  }

  /** The pool of the job an event is about (undefined for a job this replica does not know). */
  poolOfEvent(event: JobEvent): Pool | undefined {
    return event.type === 'submitted' ? event.spec.pool : this.table.get(event.jobId)?.spec.pool;
  }

  private onElected(): void {
    this.transition = this.transition.then(() => this.takeUpLeadership());
  }

  /**
   * Takes up every pool whose lease this replica holds but does not lead yet: a term marker each, then one
   * rebuild for all of them (on start, the three elections come together). Needs the log, and NATS may be
   * failing over too: retries while the leases are held.
   */
  private async takeUpLeadership(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      const due = POOLS.filter((pool) => this.electors.get(pool)?.isLeader && !this.led.has(pool));
      if (due.length === 0) return;
      try {
        for (const pool of due) {
          if (this.won.has(pool)) continue;
          // A term above every marker of the pool in the log, even if the lease bucket was lost and its terms restarted.
          const term = Math.max(this.electors.get(pool)!.term, (await this.jobLog.lastTerm(pool)) + 1);
          await this.jobLog.appendTerm({ type: 'term', pool, term, holder: this.config.replicaId, address: this.advertiseUrl, atMs: this.now() });
          if (this.electors.get(pool)?.isLeader) this.won.set(pool, term);
        }
        // A rebuild already under way (say, after a reconnect) may have started before these elections: wait it out, then rebuild.
        await this.rebuilding;
        await this.rebuild(`elected leader of ${due.map((p) => `${p} (term ${this.won.get(p)})`).join(', ')}`);
        for (const pool of due) {
          if (!this.led.has(pool)) continue;
          this.metrics.leaderChanges.inc({ pool });
          this.log.info({ pool, term: this.led.get(pool) }, 'leading the pool');
        }
      } catch (err) {
        this.log.error({ err, pools: due, attempt }, 'could not take up leadership yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * attempt)));
      }
    }
  }

  /** Stops placing the pool at once (synchronously); state is then rebuilt without it. */
  private onDeposed(pool: Pool, reason: string): void {
    const wasLeading = this.led.has(pool);
    this.led.delete(pool);
    this.won.delete(pool);
    if (this.stopped) return;
    this.log.warn({ pool, reason, wasLeading }, 'no longer leader of the pool; standing by for it');
    // Decisions of the pool still in flight may land after the next leader's marker: rebuild from what the log keeps.
    if (wasLeading) this.transition = this.transition.then(() => this.rebuild(`deposed from pool ${pool}: ${reason}`));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.led.clear();
    this.notReadyReason = 'shutting down';
    await Promise.all([...this.electors.values()].map((e) => e.stop()));
    this.stopFollowingNodes?.();
    this.stopWatchingQuotas?.();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.poolPowerTimer) clearInterval(this.poolPowerTimer);
    if (this.greenTimer) clearInterval(this.greenTimer);
    await this.telemetry?.stop();
    for (const s of this.subs) s.unsubscribe();
    await this.statusFeed?.close().catch(() => undefined);
    this.publisher?.close();
    await this.nc?.drain().catch(() => undefined);
  }

  /** InfluxDB telemetry, when QY_INFLUX_URL is set: heartbeats, pool power every interval, job events. */
  private startTelemetry(): void {
    if (!this.config.influxUrl) return;
    this.telemetry = new TelemetryWriter(
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
    this.telemetry.start();
    this.poolPowerTimer = setInterval(() => {
      const power = this.registry.poolPower();
      for (const pool of this.led.keys()) if (power[pool].nodes > 0) this.telemetry?.push({ measurement: 'pool_power', tags: { pool }, fields: { power_watts: power[pool].watts, green_watts: power[pool].greenWatts }, timestamp: new Date(this.now()) });
    }, this.config.influxPoolPowerIntervalMs);
    this.poolPowerTimer.unref();
  }

  /** A job lifecycle event for InfluxDB. */
  jobEvent(job: JobRecord, event: string, fields: Record<string, number | string> = {}): void {
    if (this.led.has(job.spec.pool)) this.telemetry?.push({ measurement: 'job_events', tags: { pool: job.spec.pool, tenant: job.tenant, event }, fields: { job_id: job.id, ...fields }, timestamp: new Date(this.now()) });
  }

  // ---- State: rebuild and apply ------------------------------------------------------------------------

  /**
   * Throws away in-memory state and rebuilds it from the KV node registry and the job log, then follows the
   * log. It takes up the pools whose elections it has won (and still holds): their jobs are reconciled with
   * the agents and placed from then on; other pools' decisions are applied as their leaders log them.
   */
  rebuild(reason: string): Promise<void> {
    this.rebuilding ??= (async () => {
      this.ready = false;
      this.led.clear();
      this.metrics.rebuilds.inc();
      this.notReadyReason = `rebuilding state from the job log (${reason})`;
      this.log.info({ reason }, 'rebuilding state from the job log');
      const startedMs = this.now();
      // Decisions still in flight land first, so the replay below holds them.
      for (let waited = 0; this.inFlight > 0 && waited < 5_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      for (;;) {
        let step = 'closing the feeds';
        try {
          await this.statusFeed?.close().catch(() => undefined);
          this.stopFollowingNodes?.();
          this.stopFollowingNodes = undefined;
          this.cluster = new ClusterState();
          this.pending = new PendingQueue();
          this.table = new JobTable(this.cluster, this.pending);
          this.usage = new UsageLedger();
          this.fence = new TermFence();
          step = 'loading the node registry';
          await this.registry.load(this.now());
          this.registry.attach(this.cluster);
          let entries = 0;
          step = 'replaying the job log';
          const lastSeq = await this.jobLog.replay((entry) => {
            entries++;
            this.ingest(entry, false);
          });
          for (const [pool, term] of this.won) if (this.electors.get(pool)?.isLeader) this.led.set(pool, term);
          step = 'following the job log';
          this.statusFeed = await this.jobLog.follow(lastSeq, (entry) => this.ingest(entry, true));
          step = 'following the node registry';
          this.stopFollowingNodes = await this.registry.follow(this.now);
          this.reconcile();
          // Usage reported while the scheduler was down, or just before it stopped, is metered now.
          for (const report of this.usage.unmetered()) if (this.leadsJob(report.jobId)) this.meterTask(report);
          this.log.info({ leads: [...this.led.keys()], entries, lastSeq, jobs: this.table.jobs.size, pending: this.pending.size, nodes: this.registry.entries.size, ms: this.now() - startedMs }, 'state rebuilt; ready');
          break;
        } catch (err) {
          this.led.clear();
          if (this.stopped) return;
          this.log.error({ err, step }, `rebuild failed while ${step}; retrying`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      this.ready = true;
      for (const pool of this.led.keys()) this.pending.markDirty(pool);
      this.requestCycle();
    })().finally(() => (this.rebuilding = undefined));
    return this.rebuilding;
  }

  /**
   * Takes one entry of the job log into memory, behind the term fence. While following (`live`), the
   * decisions this replica logged itself are already applied, and only reports about the pools it leads
   * are acted on; other pools' decisions are their leaders' to act on.
   */
  private ingest(entry: LogEntry, live: boolean): void {
    if (!this.fence.admits(entry, (e) => this.poolOfEvent(e))) return;
    if (entry.kind === 'event') {
      const pool = this.poolOfEvent(entry.event);
      if (live && pool !== undefined && this.led.get(pool) === entry.event.term) return;
      this.apply(entry);
      return;
    }
    if (entry.kind !== 'status') return;
    const effects = this.apply(entry);
    if (!live || !this.leadsJob(entry.status.jobId)) return;
    this.confirmLeadership();
    if (this.leadsJob(entry.status.jobId)) this.runEffects(effects);
  }

  /** Applies one job-log entry to memory and returns what the live service should do about it. */
  private apply(entry: Exclude<LogEntry, { kind: 'term' }>): Effect[] {
    if (entry.kind === 'status') {
      const { status } = entry;
      const effects = this.table.applyStatus(status);
      if (!status.usage || !this.table.get(status.jobId)) return effects;
      const report = { ...status, usage: status.usage };
      this.usage.noteReport(report);
      return [...effects, { kind: 'meter', report }];
    }
    const e = entry.event;
    switch (e.type) {
      case 'submitted':
        return this.table.applySubmitted(e);
      case 'placed':
        try {
          return this.table.applyPlaced(e);
        } catch (err) {
          this.log.error({ err, jobId: e.jobId, attemptId: e.attemptId }, 'logged placement does not fit the cluster as registered; job stays pending');
          return [];
        }
      case 'requeued':
        return this.table.applyRequeued(e);
      case 'cancel-requested':
        return this.table.applyCancelRequested(e);
      case 'preempted':
        return this.table.applyPreempted(e, this.config.preemptionGraceMs);
      case 'metered':
        this.usage.record(e.usage);
        return [];
    }
  }

  /** Meters a task's reported usage and records it in the job log (once per task). */
  private meterTask(report: Parameters<typeof meterReport>[0]): void {
    const job = this.table.get(report.jobId);
    if (!job || this.usage.has(usageKey(report))) return;
    const usage = meterReport(report, { tenant: job.tenant, pool: job.spec.pool, billingClass: this.tenants.tenant(job.tenant)?.billingClass ?? 'standard' }, this.metering);
    // No message id: a second copy after a retried publish is harmless, the ledger keeps one record per task.
    this.commit({ type: 'metered', jobId: job.id, usage, atMs: this.now() });
  }

  /** Quotas operators set at run time override the configured ones. */
  private async loadQuotaOverrides(): Promise<void> {
    const tenants = await retryTimeouts(async () => {
      const found: string[] = [];
      for await (const tenant of await this.quotasKv.keys()) found.push(tenant);
      return found;
    });
    for (const tenant of tenants) {
      const entry = await this.quotasKv.get(tenant);
      const parsed = entry?.operation === 'PUT' ? quotasSchema.safeParse(entry.json()) : undefined;
      if (parsed?.success) this.tenants.setQuotaOverride(tenant, parsed.data);
    }
    // Every replica follows the bucket from then on: quotas set on any of them hold for every pool's leader.
    const watch = await retryTimeouts(() => this.quotasKv.watch({ include: 'updates' }));
    this.stopWatchingQuotas = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        const parsed = entry.operation === 'PUT' ? quotasSchema.safeParse(entry.json()) : undefined;
        if (!parsed?.success) continue;
        this.tenants.setQuotaOverride(entry.key, parsed.data);
        for (const pool of this.led.keys()) this.pending.markDirty(pool);
        this.requestCycle();
      }
    })().catch((err) => this.log.warn({ err }, 'following quotas stopped'));
  }



  /**
   * Applies a decision and appends it to the log; effects run once it is stored. Resolves when stored;
   * on failure the state is rebuilt from the log and the promise rejects.
   */
  commit(event: JobEvent, msgID?: string): { effects: Effect[]; stored: Promise<void> } {
    const pool = this.poolOfEvent(event);
    const term = pool === undefined ? undefined : this.led.get(pool);
    if (pool === undefined || term === undefined) throw new NotLeaderError(pool, pool ? this.leaderOf(pool) : undefined);
    event.term = term;
    const effects = this.apply({ kind: 'event', seq: 0, event });
    this.inFlight++;
    const stored = this.jobLog.append(event, msgID).then(
      (ack) => {
        // Stored after this replica stopped leading: a newer leader may have fenced it off, so it did not happen.
        if (this.led.get(pool) !== term) throw new NotLeaderError(pool, this.leaderOf(pool));
        if (ack.duplicate) throw new Error(`job log dropped ${event.type} of ${event.jobId} as a duplicate`);
        this.metrics.logAppends.inc({ result: 'ok' });
        this.runEffects(effects);
      },
      (err: unknown) => {
        throw err instanceof Error ? err : new Error(String(err));
      },
    );
    stored
      .catch((err: Error) => {
        if (err instanceof NotLeaderError) return;
        this.metrics.logAppends.inc({ result: 'failed' });
        this.log.error({ err, jobId: event.jobId, event: event.type }, 'append to the job log failed');
        void this.rebuild(`append failed: ${err.message}`);
      })
      .finally(() => {
        this.inFlight--;
        if (this.cyclePaused && this.inFlight < MAX_IN_FLIGHT / 4) {
          this.cyclePaused = false;
          this.requestCycle();
        }
      });
    return { effects, stored };
  }

  /** Carries out what applying an entry asked for: work for agents, retries of waiting jobs. */
  private runEffects(effects: Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'assign':
          this.deferral.forget(effect.job.id);
          this.sendAssignments(effect.job, effect.attempt, undefined);
          this.jobEvent(effect.job, 'placed', { attempt: effect.attempt.attempt, wait_seconds: Math.max(0, effect.attempt.placedAtMs - effect.job.queuedAtMs) / 1000 });
          break;
        case 'stop-tasks':
          this.sendCancels(effect.job, effect.attempt, effect.reason, effect.graceMs);
          break;
        case 'stray-task':
          this.cancelStray(effect.nodeId, effect.jobId, effect.attemptId, [effect.taskIndex]);
          break;
        case 'capacity-freed':
          this.pending.markDirty(effect.job.spec.pool);
          this.requestCycle();
          break;
        case 'job-started':
          if (effect.attempt.attempt === 1) this.metrics.submitToRunning.observe({ pool: effect.job.spec.pool }, Math.max(0, effect.atMs - effect.job.submittedAtMs) / 1000);
          this.jobEvent(effect.job, 'started', { attempt: effect.attempt.attempt });
          break;
        case 'job-requeued':
          this.metrics.jobsRequeued.inc({ pool: effect.job.spec.pool, cause: effect.cause });
          this.jobEvent(effect.job, 'requeued', { cause: effect.cause });
          break;
        case 'meter':
          this.meterTask(effect.report);
          break;
        case 'job-ended':
          this.metrics.jobsFinished.inc({ pool: effect.job.spec.pool, tenant: effect.job.tenant, outcome: effect.job.state });
          this.jobEvent(effect.job, 'finished', { outcome: effect.job.state, attempts: effect.job.attempts.length });
          this.log.debug({ jobId: effect.job.id, state: effect.job.state }, 'job ended');
          break;
      }
    }
  }

  /** After a rebuild: resend work that may never have reached agents, and stops still under way. */
  private reconcile(): void {
    for (const job of this.table.jobs.values()) {
      const attempt = job.current;
      if (!attempt || !this.led.has(job.spec.pool)) continue;
      if (attempt.stop) this.sendCancels(job, attempt, attempt.stop.reason);
      else this.sendAssignments(job, attempt, (t) => t.state === 'assigned');
    }
  }

  // ---- Scheduling -------------------------------------------------------------------------------------

  /** Runs a scheduling cycle soon; many requests in one tick make one cycle. */
  requestCycle(): void {
    if (this.cycleQueued || this.led.size === 0) return;
    this.cycleQueued = true;
    setImmediate(() => {
      this.cycleQueued = false;
      this.runCycle();
    });
  }

  private runCycle(): void {
    this.confirmLeadership();
    if (this.led.size === 0 || !this.pending.hasWork) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.cyclePaused = true;
      return;
    }
    const end = this.metrics.cycleDuration.startTimer();
    const more = this.scheduling.run().more;
    end();
    if (more) this.requestCycle();
  }

  /** A placement for a job that has just arrived, if one fits now within its tenant's quota (nothing is reserved). */
  placeNow(prepared: PreparedJobWithCache): Placement | undefined {
    return this.scheduling.placeNow(prepared);
  }

  // ---- Work for agents --------------------------------------------------------------------------------

  private sendAssignments(job: JobRecord, attempt: AttemptRecord, which: ((t: AttemptRecord['tasks'][number]) => boolean) | undefined): void {
    const hosts = attempt.placement.tasks.map((t) => t.nodeId);
    const byNode = new Map<string, Assignment['tasks']>();
    for (const t of attempt.tasks) {
      if (which && !which(t)) continue;
      const list = byNode.get(t.placement.nodeId) ?? [];
      list.push(t.placement);
      byNode.set(t.placement.nodeId, list);
    }
    for (const [nodeId, tasks] of byNode) {
      const work: Assignment = {
        type: 'assign',
        jobId: job.id,
        attemptId: attempt.attemptId,
        nodeId,
        tenant: job.tenant,
        tasks,
        hosts,
        command: job.spec.command,
        env: job.spec.env,
        walltimeMs: job.sched.walltimeMs,
        durationMs: job.sched.durationMs,
        dataClass: job.spec.dataClass,
        sandbox: job.spec.sandbox,
        atMs: this.now(),
      };
      // No message id: the agent's journal makes a repeated assignment harmless.
      this.sendWork(nodeId, work);
    }
  }

  private sendCancels(job: JobRecord, attempt: AttemptRecord, reason: string, graceMs = this.config.cancelGraceMs): void {
    const byNode = new Map<string, number[]>();
    for (const t of this.table.liveTasks(attempt)) {
      const list = byNode.get(t.placement.nodeId) ?? [];
      list.push(t.placement.taskIndex);
      byNode.set(t.placement.nodeId, list);
    }
    for (const [nodeId, taskIndexes] of byNode) this.cancelOn(nodeId, job.id, attempt.attemptId, taskIndexes, reason, graceMs);
  }

  /** Stops a task running for an attempt the scheduler no longer holds resources for (at most every 10 s). */
  private cancelStray(nodeId: string, jobId: string, attemptId: string, taskIndexes: number[]): void {
    const key = `${attemptId}/${nodeId}`;
    const last = this.strayCancelAtMs.get(key) ?? 0;
    if (this.now() - last < 10_000) return;
    this.strayCancelAtMs.set(key, this.now());
    if (this.strayCancelAtMs.size > 10_000) this.strayCancelAtMs.clear();
    this.log.warn({ nodeId, jobId, attemptId }, 'stopping a task of an attempt that is no longer active');
    this.cancelOn(nodeId, jobId, attemptId, taskIndexes, 'attempt is no longer active');
  }

  private cancelOn(nodeId: string, jobId: string, attemptId: string, taskIndexes: number[], reason: string, graceMs = this.config.cancelGraceMs): void {
    this.sendWork(nodeId, { type: 'cancel', jobId, attemptId, nodeId, taskIndexes, reason, graceMs, atMs: this.now() });
  }

  /** Sends work to a node's agent, with this replica's term in the node's pool (only for pools it leads). */
  private sendWork(nodeId: string, work: AgentWork): void {
    const entry = this.registry.entries.get(nodeId);
    if (!entry) {
      this.log.error({ nodeId, jobId: work.jobId }, 'no agent known for node; work not sent');
      return;
    }
    const term = this.led.get(entry.spec.pool);
    if (term === undefined) return;
    work.term = term;
    this.publisher.publish(subjects.assign(entry.agentId, nodeId), JSON.stringify(work)).catch((err: Error) => {
      // Reconnecting triggers a rebuild, whose reconciliation sends the work again.
      this.log.warn({ err: err.message, nodeId, jobId: work.jobId, work: work.type }, 'could not send work to agent');
    });
  }

  // ---- Agents: registration, heartbeats, liveness -------------------------------------------------------

  private async onRegister(subject: string, data: Uint8Array, reply: (r: RegistrationReply) => void): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(data));
    } catch {
      return reply({ ok: false, code: 'QY_ERR_MALFORMED_JSON', message: 'registration is not JSON' });
    }
    const parsed = registrationSchema.safeParse(body);
    if (!parsed.success) return reply({ ok: false, code: 'QY_ERR_VALIDATION', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
    const reg = parsed.data;
    if (nodeIdOfSubject(subject) !== reg.node.id) return reply({ ok: false, code: 'QY_ERR_VALIDATION', message: 'node id does not match the subject' });
    // Only the leader of the node's pool answers; the others stay silent (an agent retries until one does).
    if (!this.led.has(reg.node.pool)) return;
    try {
      if (!this.knownAgents.has(reg.agentId)) {
        await ensureAgentConsumer(this.jsm, reg.agentId);
        this.knownAgents.add(reg.agentId);
      }
      const entry = await this.registry.register(reg, this.now());
      this.pending.markDirty(reg.node.pool);
      this.requestCycle();
      reply({ ok: true, heartbeatIntervalMs: this.config.heartbeatIntervalMs, nodeState: this.registry.stateOf(entry) });
    } catch (err) {
      this.log.warn({ err, nodeId: reg.node.id }, 'registration refused');
      reply({ ok: false, code: 'QY_ERR_REGISTRATION_REFUSED', message: (err as Error).message });
    }
  }

  private onHeartbeat(subject: string, data: Uint8Array): void {
    let parsed;
    try {
      parsed = heartbeatSchema.safeParse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      return;
    }
    if (!parsed.success || nodeIdOfSubject(subject) !== parsed.data.nodeId) return;
    const hb = parsed.data;
    const entry = this.registry.entries.get(hb.nodeId);
    if (!entry) return;
    const nowMs = this.now();
    // Energy since the previous heartbeat at the power just reported (gaps longer than 3 intervals are not filled in).
    const seconds = entry.lastHeartbeat ? Math.min(nowMs - entry.lastSeenMs, 3 * this.config.heartbeatIntervalMs) / 1000 : 0;
    // Every replica tracks liveness for its views; energy and telemetry are counted by the pool's leader alone.
    const mine = this.led.has(entry.spec.pool);
    if (seconds > 0 && mine) {
      this.metrics.energy.inc({ pool: entry.spec.pool }, hb.powerWatts * seconds);
      this.metrics.greenEnergy.inc({ pool: entry.spec.pool }, hb.powerWatts * seconds * hb.greenShare);
    }
    entry.missedHeartbeats = 0;
    if (mine)
      this.telemetry?.push({
      measurement: 'node_telemetry',
      tags: { node: hb.nodeId, pool: entry.spec.pool, zone: entry.spec.zone },
      fields: { cpu_util: hb.cpuUtil, mem_used_bytes: hb.memUsedBytes, gpu_util: hb.gpus.length > 0 ? hb.gpus.reduce((s, g) => s + g.util, 0) / hb.gpus.length : 0, power_watts: hb.powerWatts, green_share: hb.greenShare },
      timestamp: new Date(nowMs),
    });
    if (this.registry.heartbeat(hb, nowMs)) {
      this.log.info({ nodeId: hb.nodeId }, 'node is back');
      this.pending.markDirty(entry.spec.pool);
      this.requestCycle();
    }
    if (!mine) return;
    for (const running of hb.running) {
      const slash = running.lastIndexOf('/');
      const attemptId = running.slice(0, slash);
      const taskIndex = Number(running.slice(slash + 1));
      const jobId = attemptId.slice(0, attemptId.lastIndexOf('-a'));
      const job = this.table.get(jobId);
      const task = job?.current?.attemptId === attemptId ? job.current.tasks[taskIndex] : undefined;
      if (!task || task.placement.nodeId !== hb.nodeId || (task.state !== 'running' && task.state !== 'assigned')) this.cancelStray(hb.nodeId, jobId, attemptId, [taskIndex]);
    }
  }

  private sweep(): void {
    const nowMs = this.now();
    for (const entry of this.registry.entries.values()) {
      const missed = Math.max(0, Math.floor((nowMs - entry.lastSeenMs) / this.config.heartbeatIntervalMs) - 1);
      if (missed > entry.missedHeartbeats) {
        this.metrics.heartbeatsMissed.inc({ pool: entry.spec.pool }, missed - entry.missedHeartbeats);
        entry.missedHeartbeats = missed;
      }
    }
    const down = this.registry.sweep(nowMs, this.config.suspectAfterMs, this.config.downAfterMs);
    if (down.length > 0) this.confirmLeadership();
    for (const node of down) if (this.led.has(node.spec.pool)) this.requeueJobsOn(node, true, `node ${node.id} is down (no heartbeat for ${this.config.downAfterMs} ms)`);
  }

  /** Requeues every job with a task on the node: its tasks are lost (node down) or stopped first (drain). */
  requeueJobsOn(node: NodeEntry, lost: boolean, reason: string): number {
    let count = 0;
    for (const jobId of [...this.cluster.placedJobIds()]) {
      const job = this.table.get(jobId);
      const attempt = job?.current;
      if (!job || !attempt || !attempt.tasks.some((t) => t.placement.nodeId === node.id)) continue;
      this.log.warn({ jobId, nodeId: node.id, attemptId: attempt.attemptId }, reason);
      this.commit({ type: 'requeued', jobId, attemptId: attempt.attemptId, lostNodeIds: lost ? [node.id] : [], reason, atMs: this.now() });
      count++;
    }
    return count;
  }

  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.stopped) return;
      if (s.type === 'disconnect') {
        this.ready = false;
        this.led.clear();
        this.notReadyReason = 'disconnected from NATS';
      } else if (s.type === 'reconnect') void this.rebuild('reconnected to NATS');
    }
  }

  /** JetStream client for callers that need it (logs, tests). */
  get jetstream(): JetStreamClient {
    return this.js;
  }
}
