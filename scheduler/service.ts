import { jetstream, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ClusterState, DEFAULT_POLICY, PendingQueue, placeJob, prepareJob, type AttemptOutcome, type Placement, type Policy, type PreparedJobWithCache, type SchedJob } from '../src/core';
import {
  attemptIdOf,
  heartbeatSchema,
  nodeIdOfSubject,
  registrationSchema,
  subjects,
  type AgentWork,
  type Assignment,
  type JobEvent,
  type JobPlaced,
  type RegistrationReply,
} from '../src/protocol';
import { JetStreamPublisher } from '../src/store/js-publisher';
import { JobLog, type LogEntry } from '../src/store/job-log';
import { connectNats, ensureAgentConsumer, ensureStreams, openNodesKv } from '../src/store/nats';
import type { Logger } from '../src/telemetry/logger';
import type { SchedulerConfig } from './config';
import { NodeRegistry, type NodeEntry } from './nodes';
import { JobTable, type AttemptRecord, type Effect, type JobRecord } from './state/job-table';

/** Appends in flight above which scheduling cycles pause until JetStream catches up. */
const MAX_IN_FLIGHT = 4_096;

/**
 * The scheduler: keeps the cluster and every job in memory, rebuilt from the job log (QY_JOBS) on start
 * and after any doubt (a failed write, a NATS reconnect); places pending jobs with the core; writes each
 * decision to the log and sends work to agents (QY_ASSIGN); follows agents' status reports and heartbeats.
 *
 * Every decision is applied in memory at the moment it is appended, in append order, so the log replays
 * to the same state. A failed append means memory and log may differ: the scheduler then rebuilds from the log.
 */
export class Scheduler {
  cluster = new ClusterState();
  pending = new PendingQueue();
  table = new JobTable(this.cluster, this.pending);
  registry!: NodeRegistry;
  nc!: NatsConnection;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private jobLog!: JobLog;
  private publisher!: JetStreamPublisher;
  private statusFeed: ConsumerMessages | undefined;
  private readonly subs: Subscription[] = [];
  private readonly knownAgents = new Set<string>();
  private readonly prepared = new WeakMap<SchedJob, PreparedJobWithCache>();
  private readonly strayCancelAtMs = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private cycleQueued = false;
  private cyclePaused = false;
  private inFlight = 0;
  private rebuilding: Promise<void> | undefined;
  private stopped = false;
  ready = false;
  notReadyReason = 'starting';

  constructor(
    readonly config: SchedulerConfig,
    readonly log: Logger,
    readonly policy: Policy = DEFAULT_POLICY,
    readonly now: () => number = Date.now,
  ) {}

  /** Connects, rebuilds state from the job log, and starts serving agents. */
  async start(): Promise<void> {
    this.nc = await connectNats(this.config.natsUrl, 'qy-scheduler', this.log);
    this.jsm = await ensureStreams(this.nc, { replicas: this.config.streamReplicas, duplicateWindowMs: this.config.duplicateWindowMs });
    this.js = jetstream(this.nc);
    this.publisher = new JetStreamPublisher(this.nc);
    this.jobLog = new JobLog(this.nc, this.log, this.publisher);
    this.registry = new NodeRegistry(await openNodesKv(this.nc, this.config.streamReplicas), this.log);
    await this.rebuild('start');
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
    void this.watchConnection();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.notReadyReason = 'shutting down';
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const s of this.subs) s.unsubscribe();
    await this.statusFeed?.close().catch(() => undefined);
    this.publisher?.close();
    await this.nc?.drain().catch(() => undefined);
  }

  // ---- State: rebuild and apply ------------------------------------------------------------------------

  /** Throws away in-memory state and rebuilds it from the KV node registry and the job log. */
  rebuild(reason: string): Promise<void> {
    this.rebuilding ??= (async () => {
      this.ready = false;
      this.notReadyReason = `rebuilding state from the job log (${reason})`;
      this.log.info({ reason }, 'rebuilding state from the job log');
      const startedMs = this.now();
      for (;;) {
        try {
          await this.statusFeed?.close().catch(() => undefined);
          this.cluster = new ClusterState();
          this.pending = new PendingQueue();
          this.table = new JobTable(this.cluster, this.pending);
          await this.registry.load(this.now());
          this.registry.attach(this.cluster);
          let entries = 0;
          const lastSeq = await this.jobLog.replay((entry) => {
            entries++;
            this.apply(entry);
          });
          this.statusFeed = await this.jobLog.followStatus(lastSeq, (entry) => this.runEffects(this.apply(entry)));
          this.reconcile();
          this.log.info({ entries, lastSeq, jobs: this.table.jobs.size, pending: this.pending.size, nodes: this.registry.entries.size, ms: this.now() - startedMs }, 'state rebuilt; ready');
          break;
        } catch (err) {
          if (this.stopped) return;
          this.log.error({ err }, 'rebuild failed; retrying');
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      this.ready = true;
      this.pending.markDirty('general');
      this.pending.markDirty('intelligent');
      this.pending.markDirty('super');
      this.requestCycle();
    })().finally(() => (this.rebuilding = undefined));
    return this.rebuilding;
  }

  /** Applies one job-log entry to memory and returns what the live service should do about it. */
  private apply(entry: LogEntry): Effect[] {
    if (entry.kind === 'status') return this.table.applyStatus(entry.status);
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
    }
  }

  /**
   * Applies a decision and appends it to the log; effects run once it is stored. Resolves when stored;
   * on failure the state is rebuilt from the log and the promise rejects.
   */
  commit(event: JobEvent, msgID?: string): { effects: Effect[]; stored: Promise<void> } {
    const effects = this.apply({ kind: 'event', seq: 0, event });
    this.inFlight++;
    const stored = this.jobLog.append(event, msgID).then(
      (ack) => {
        if (ack.duplicate) throw new Error(`job log dropped ${event.type} of ${event.jobId} as a duplicate`);
        this.runEffects(effects);
      },
      (err: unknown) => {
        throw err instanceof Error ? err : new Error(String(err));
      },
    );
    stored
      .catch((err: Error) => {
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
          this.sendAssignments(effect.job, effect.attempt, undefined);
          break;
        case 'stop-tasks':
          this.sendCancels(effect.job, effect.attempt, effect.reason);
          break;
        case 'stray-task':
          this.cancelStray(effect.nodeId, effect.jobId, effect.attemptId, [effect.taskIndex]);
          break;
        case 'capacity-freed':
          this.pending.markDirty(effect.job.spec.pool);
          this.requestCycle();
          break;
        case 'job-ended':
          this.log.debug({ jobId: effect.job.id, state: effect.job.state }, 'job ended');
          break;
      }
    }
  }

  /** After a rebuild: resend work that may never have reached agents, and stops still under way. */
  private reconcile(): void {
    for (const job of this.table.jobs.values()) {
      const attempt = job.current;
      if (!attempt) continue;
      if (attempt.stop) this.sendCancels(job, attempt, attempt.stop.reason);
      else this.sendAssignments(job, attempt, (t) => t.state === 'assigned');
    }
  }

  // ---- Scheduling -------------------------------------------------------------------------------------

  /** Runs a scheduling cycle soon; many requests in one tick make one cycle. */
  requestCycle(): void {
    if (this.cycleQueued || !this.ready) return;
    this.cycleQueued = true;
    setImmediate(() => {
      this.cycleQueued = false;
      this.runCycle();
    });
  }

  private runCycle(): void {
    if (!this.ready || !this.pending.hasWork) return;
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.cyclePaused = true;
      return;
    }
    const report = this.pending.runCycle((job) => this.tryPlace(job), this.config.cycleAttempts);
    if (report.more) this.requestCycle();
  }

  /** A placement for a job that has just arrived, if one fits now (nothing is reserved). */
  placeNow(prepared: PreparedJobWithCache): Placement | undefined {
    const result = placeJob(this.cluster, prepared, this.policy);
    if (result.ok) this.prepared.set(prepared.job, prepared);
    return result.ok ? result.placement : undefined;
  }

  private tryPlace(job: SchedJob): AttemptOutcome {
    let p = this.prepared.get(job);
    if (!p) {
      p = prepareJob(job, this.policy);
      this.prepared.set(job, p);
    }
    const result = placeJob(this.cluster, p, this.policy);
    if (!result.ok) return { ok: false, failure: result };
    const record = this.table.get(job.id)!;
    const attempt = record.attempts.length + 1;
    const event: JobPlaced = { type: 'placed', jobId: job.id, attempt, attemptId: attemptIdOf(job.id, attempt), placement: result.placement, atMs: this.now() };
    this.commit(event);
    return { ok: true };
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
        atMs: this.now(),
      };
      // No message id: the agent's journal makes a repeated assignment harmless.
      this.sendWork(nodeId, work);
    }
  }

  private sendCancels(job: JobRecord, attempt: AttemptRecord, reason: string): void {
    const byNode = new Map<string, number[]>();
    for (const t of this.table.liveTasks(attempt)) {
      const list = byNode.get(t.placement.nodeId) ?? [];
      list.push(t.placement.taskIndex);
      byNode.set(t.placement.nodeId, list);
    }
    for (const [nodeId, taskIndexes] of byNode) this.cancelOn(nodeId, job.id, attempt.attemptId, taskIndexes, reason);
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

  private cancelOn(nodeId: string, jobId: string, attemptId: string, taskIndexes: number[], reason: string): void {
    this.sendWork(nodeId, { type: 'cancel', jobId, attemptId, nodeId, taskIndexes, reason, graceMs: this.config.cancelGraceMs, atMs: this.now() });
  }

  private sendWork(nodeId: string, work: AgentWork): void {
    const agentId = this.registry.entries.get(nodeId)?.agentId;
    if (!agentId) {
      this.log.error({ nodeId, jobId: work.jobId }, 'no agent known for node; work not sent');
      return;
    }
    this.publisher.publish(subjects.assign(agentId, nodeId), JSON.stringify(work)).catch((err: Error) => {
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
    if (!this.ready) return reply({ ok: false, code: 'QY_ERR_NOT_READY', message: this.notReadyReason });
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
    if (this.registry.heartbeat(hb, this.now())) {
      this.log.info({ nodeId: hb.nodeId }, 'node is back');
      this.pending.markDirty(entry.spec.pool);
      this.requestCycle();
    }
    if (!this.ready) return;
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
    const down = this.registry.sweep(this.now(), this.config.suspectAfterMs, this.config.downAfterMs);
    if (down.length > 0 && this.ready) for (const node of down) this.requeueJobsOn(node, true, `node ${node.id} is down (no heartbeat for ${this.config.downAfterMs} ms)`);
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
        this.notReadyReason = 'disconnected from NATS';
      } else if (s.type === 'reconnect') void this.rebuild('reconnected to NATS');
    }
  }

  /** JetStream client for callers that need it (logs, tests). */
  get jetstream(): JetStreamClient {
    return this.js;
  }
}
