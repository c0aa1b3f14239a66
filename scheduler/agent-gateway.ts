import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { REGISTRATION_ERROR_CODES, fenceHasFired, fenceIsSafe, heartbeatSchema, jobIdOfAttempt, logReplySchema, nodeIdOfSubject, parseTaskKey, registrationSchema, subjects, type AgentWork, type Assignment, type LogReply, type LogRequest, type RegistrationReply } from '../src/protocol';
import { publishUntilStored, type JetStreamPublisher } from '../src/store/js-publisher';
import { deleteAgentConsumer, ensureAgentConsumer } from '../src/store/nats';
import type { AuditLog } from '../src/store/audit-log';
import type { Logger } from '../src/telemetry/logger';
import type { SchedulerMetrics } from '../src/telemetry/metrics';
import type { Clock, Timer } from '../src/time';
import type { SchedulerConfig } from './config';
import type { SchedulerCycle } from './cycle';
import type { JobStore } from './job-store';
import type { LeadershipView } from './leadership';
import type { NodeEntry, NodeRegistry } from './nodes';
import type { AttemptRecord, JobRecord } from './state/job-table';
import type { TelemetrySink } from './telemetry-sink';

/** A down node that could not be forgotten (the store unavailable) is tried again after this long. */
const FORGET_RETRY_MS = 30_000;

/** Work JetStream did not store is sent again after this long, doubling up to the maximum. */
const WORK_RETRY_FIRST_MS = 250;
const WORK_RETRY_MAX_MS = 5_000;

/**
 * The scheduler's side of the agent protocol: registrations (answered by the leader of the node's pool),
 * heartbeats and liveness (a silent node turns suspect, then down, and its jobs are requeued), and work
 * sent to agents (QY_ASSIGN: assignments and cancels, each carrying the term of the pool's leader).
 */
export class AgentGateway {
  private readonly subs: Subscription[] = [];
  private readonly knownAgents = new Set<string>();
  private readonly strayCancelAtMs = new Map<string, number>();
  private sweepTimer: Timer | undefined;
  private stopped = false;
  /** Nodes found down whose fence may not have fired yet: requeued by a later sweep, once it must have. */
  private readonly awaitingFence = new Set<NodeEntry>();
  /** Forgetting under way per agent: its registration waits for it (the consumer is removed, then made anew). */
  private readonly pendingForget = new Map<string, Promise<void>>();
  /** Nodes the sweep is forgetting now. */
  private readonly forgetting = new Set<string>();
  /** Nodes whose forgetting failed (the store unavailable): tried again from then on, not at every sweep. */
  private readonly forgetRetryAtMs = new Map<string, number>();

  constructor(
    private readonly deps: {
      nc: NatsConnection;
      jsm: JetStreamManager;
      publisher: JetStreamPublisher;
      registry: NodeRegistry;
      store: JobStore;
      leadership: LeadershipView;
      cycle: SchedulerCycle;
      telemetry: TelemetrySink;
      /** Takes over an attempt whose start must wait (a job another site routed here, until its claim is confirmed); false to send it now. */
      holdStart?: (job: JobRecord, attempt: AttemptRecord) => boolean;
      config: SchedulerConfig;
      metrics: SchedulerMetrics;
      clock: Clock;
      log: Logger;
      /** Where forgotten nodes are audited (absent in tests that run without one). */
      audit?: () => AuditLog | undefined;
    },
  ) {
    // However a node is forgotten (here, or by another replica through the bucket), its agent's consumer is
    // made again at its next registration once none of its nodes is left.
    deps.registry.onForgotten.push((entry) => {
      if (!deps.registry.servesNodes(entry.agentId)) this.knownAgents.delete(entry.agentId);
    });
  }

  /** Listens to registrations and heartbeats, and sweeps liveness. */
  start(): void {
    const { nc, config, clock } = this.deps;
    this.subs.push(
      nc.subscribe(subjects.allRegister, {
        callback: (err, msg) => {
          if (!err) void this.onRegister(msg.subject, msg.data, (r) => msg.respond(JSON.stringify(r)));
        },
      }),
    );
    this.subs.push(
      nc.subscribe(subjects.allHeartbeats, {
        callback: (err, msg) => {
          if (!err) this.onHeartbeat(msg.subject, msg.data);
        },
      }),
    );
    this.sweepTimer = clock.setInterval(() => this.sweep(), Math.max(50, Math.min(250, config.suspectAfterMs / 4)));
  }

  stop(): void {
    this.stopped = true;
    this.sweepTimer?.cancel();
    for (const s of this.subs) s.unsubscribe();
  }

  /** After a rebuild: resend work that may never have reached agents, and stops still under way. */
  reconcile(): void {
    for (const job of this.deps.store.table.jobs.values()) {
      const attempt = job.current;
      if (!attempt || !this.deps.leadership.leads(job.spec.pool)) continue;
      if (attempt.stop) this.sendCancels(job, attempt, attempt.stop.reason);
      else if (!this.deps.holdStart?.(job, attempt)) this.sendAssignments(job, attempt, (t) => t.state === 'assigned');
    }
  }

  /** Sends an attempt's tasks to their agents (all of them, or those `which` selects). */
  sendAssignments(job: JobRecord, attempt: AttemptRecord, which?: (t: AttemptRecord['tasks'][number]) => boolean): void {
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
        atMs: this.deps.clock.now(),
      };
      // No message id: the agent's journal makes a repeated assignment harmless.
      this.sendWork(nodeId, work, () => this.stillAssigned(job.id, attempt.attemptId, nodeId));
    }
  }

  /** Stops an attempt's live tasks on their agents. */
  sendCancels(job: JobRecord, attempt: AttemptRecord, reason: string, graceMs = this.deps.config.cancelGraceMs): void {
    const byNode = new Map<string, number[]>();
    for (const t of this.deps.store.table.liveTasks(attempt)) {
      const list = byNode.get(t.placement.nodeId) ?? [];
      list.push(t.placement.taskIndex);
      byNode.set(t.placement.nodeId, list);
    }
    for (const [nodeId, taskIndexes] of byNode) this.cancelOn(nodeId, job.id, attempt.attemptId, taskIndexes, reason, () => this.stillLiveOn(job.id, attempt.attemptId, nodeId), graceMs);
  }

  /** Whether an attempt is still current and not being stopped, with a task on the node still waiting for its agent. */
  private stillAssigned(jobId: string, attemptId: string, nodeId: string): boolean {
    const attempt = this.deps.store.table.get(jobId)?.current;
    return attempt?.attemptId === attemptId && !attempt.stop && attempt.tasks.some((t) => t.placement.nodeId === nodeId && t.state === 'assigned');
  }

  /** Whether an attempt still has a live task on the node (a stop not yet confirmed). */
  private stillLiveOn(jobId: string, attemptId: string, nodeId: string): boolean {
    const attempt = this.deps.store.table.get(jobId)?.current;
    return attempt?.attemptId === attemptId && this.deps.store.table.liveTasks(attempt).some((t) => t.placement.nodeId === nodeId);
  }

  /** Stops a task running for an attempt the scheduler no longer holds resources for (at most every 10 s). */
  cancelStray(nodeId: string, jobId: string, attemptId: string, taskIndexes: number[]): void {
    const nowMs = this.deps.clock.now();
    const key = `${attemptId}/${nodeId}`;
    if (nowMs - (this.strayCancelAtMs.get(key) ?? -Infinity) < 10_000) return;
    this.strayCancelAtMs.set(key, nowMs);
    if (this.strayCancelAtMs.size > 10_000) this.strayCancelAtMs.clear();
    this.deps.log.warn({ nodeId, jobId, attemptId }, 'stopping a task of an attempt that is no longer active');
    // Not sent again on a failure: the node's next heartbeat that still lists the task asks again.
    this.cancelOn(nodeId, jobId, attemptId, taskIndexes, 'attempt is no longer active', () => false);
  }

  /** Asks a node's agent for the tail of a task's output. */
  async requestLog(nodeId: string, request: LogRequest): Promise<LogReply> {
    const msg = await this.deps.nc.request(subjects.log(nodeId), JSON.stringify(request), { timeout: 3_000 });
    const reply = logReplySchema.safeParse(msg.json());
    if (!reply.success) throw new Error('unreadable reply');
    return reply.data;
  }

  /** Requeues every job with a task on the node: its tasks are lost (node down) or stopped first (drain). */
  requeueJobsOn(node: NodeEntry, lost: boolean, reason: string): number {
    const { store, clock, log } = this.deps;
    let count = 0;
    for (const jobId of store.cluster.jobsOn(node.id)) {
      const job = store.table.get(jobId);
      const attempt = job?.current;
      if (!job || !attempt) continue;
      log.warn({ jobId, nodeId: node.id, attemptId: attempt.attemptId }, reason);
      store.commitWhenOpen({ type: 'requeued', jobId, attemptId: attempt.attemptId, lostNodeIds: lost ? [node.id] : [], reason, atMs: clock.now() });
      count++;
    }
    return count;
  }

  private cancelOn(nodeId: string, jobId: string, attemptId: string, taskIndexes: number[], reason: string, stillWanted: () => boolean, graceMs = this.deps.config.cancelGraceMs): void {
    this.sendWork(nodeId, { type: 'cancel', jobId, attemptId, nodeId, taskIndexes, reason, graceMs, atMs: this.deps.clock.now() }, stillWanted);
  }

  /**
   * Sends work to a node's agent, with this replica's term in the node's pool (only for pools it leads). Work
   * that JetStream did not store (a timeout while a NATS server of the cluster is lost and the stream elects
   * a leader; the connection itself may stay up, so no rebuild follows) is sent again with backoff, stamped
   * anew, for as long as `stillWanted` says it is and this replica leads the pool in the same term.
   */
  private sendWork(nodeId: string, work: AgentWork, stillWanted: () => boolean): void {
    const entry = this.deps.registry.entries.get(nodeId);
    if (!entry) {
      this.deps.log.error({ nodeId, jobId: work.jobId }, 'no agent known for node; work not sent');
      return;
    }
    const { leadership, clock, log } = this.deps;
    const term = leadership.termOf(entry.spec.pool);
    if (term === undefined) return;
    void publishUntilStored(
      this.deps.publisher,
      subjects.assign(entry.agentId, nodeId),
      (attempt) => {
        if (attempt === 1) return JSON.stringify({ ...work, term });
        if (this.stopped || leadership.termOf(entry.spec.pool) !== term || !stillWanted()) return undefined;
        return JSON.stringify({ ...work, term, atMs: clock.now() });
      },
      {
        firstDelayMs: WORK_RETRY_FIRST_MS,
        maxDelayMs: WORK_RETRY_MAX_MS,
        clock,
        onFailure: (err, retryMs) => log.warn({ err: err.message, nodeId, jobId: work.jobId, work: work.type, retryMs }, 'could not send work to agent; sending it again'),
      },
    );
  }


  private async onRegister(subject: string, data: Uint8Array, reply: (r: RegistrationReply) => void): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(data));
    } catch {
      return reply({ ok: false, code: REGISTRATION_ERROR_CODES.malformedJson, message: 'registration is not JSON' });
    }
    const parsed = registrationSchema.safeParse(body);
    if (!parsed.success) return reply({ ok: false, code: REGISTRATION_ERROR_CODES.validation, message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
    const reg = parsed.data;
    if (nodeIdOfSubject(subject) !== reg.node.id) return reply({ ok: false, code: REGISTRATION_ERROR_CODES.validation, message: 'node id does not match the subject' });
    // Only the leader of the node's pool answers; the others stay silent (an agent retries until one does).
    if (!this.deps.leadership.leads(reg.node.pool)) return;
    // A fence that fires after this scheduler requeues would let two attempts overlap: such a node gets no work.
    const fence = reg.node.enforcement?.fence;
    if (fence && !fenceIsSafe(fence, this.deps.config.downAfterMs)) {
      return reply({
        ok: false,
        code: REGISTRATION_ERROR_CODES.refused,
        message: `unsafe fence: the agent stops its tasks ${fence.afterMs} + ${fence.graceMs} ms (QY_FENCE_AFTER_MS + QY_KILL_GRACE_MS) after losing NATS, which must be at least 500 ms less than this scheduler's QY_DOWN_AFTER_MS (${this.deps.config.downAfterMs} ms)`,
      });
    }
    try {
      await this.pendingForget.get(reg.agentId);
      if (!this.knownAgents.has(reg.agentId)) {
        await ensureAgentConsumer(this.deps.jsm, reg.agentId);
        this.knownAgents.add(reg.agentId);
      }
      const entry = await this.deps.registry.register(reg, this.deps.clock.now());
      this.deps.cycle.retry(reg.node.pool);
      reply({ ok: true, heartbeatIntervalMs: this.deps.config.heartbeatIntervalMs, downAfterMs: this.deps.config.downAfterMs, nodeState: this.deps.registry.stateOf(entry) });
    } catch (err) {
      this.deps.log.warn({ err, nodeId: reg.node.id }, 'registration refused');
      reply({ ok: false, code: REGISTRATION_ERROR_CODES.refused, message: (err as Error).message });
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
    const { registry, store, leadership, config, metrics, clock, telemetry, log } = this.deps;
    const entry = registry.entries.get(hb.nodeId);
    if (!entry) return;
    const nowMs = clock.now();
    // Energy since the previous heartbeat at the power just reported (gaps longer than 3 intervals are not filled in).
    const seconds = entry.lastHeartbeat ? Math.min(nowMs - entry.lastSeenMs, 3 * config.heartbeatIntervalMs) / 1000 : 0;
    // Every replica tracks liveness for its views; energy and telemetry are counted by the pool's leader alone.
    const mine = leadership.leads(entry.spec.pool);
    if (seconds > 0 && mine) {
      metrics.energy.inc({ pool: entry.spec.pool }, hb.powerWatts * seconds);
      metrics.greenEnergy.inc({ pool: entry.spec.pool }, hb.powerWatts * seconds * hb.greenShare);
    }
    entry.missedHeartbeats = 0;
    if (mine) telemetry.heartbeat(hb, entry.spec, nowMs);
    // A down time this replica held may be in the bucket too (stored when the node went down, or loaded from it).
    const hadDownTime = entry.downSinceMs !== undefined;
    if (registry.heartbeat(hb, nowMs)) {
      log.info({ nodeId: hb.nodeId }, 'node is back');
      this.deps.cycle.retry(entry.spec.pool);
      if (mine && hadDownTime) void registry.persistDownTime(entry).catch((err: Error) => log.warn({ nodeId: hb.nodeId, err: err.message }, 'could not clear the stored down time of a node that is back'));
    }
    if (!mine) return;
    for (const running of hb.running) {
      const key = parseTaskKey(running);
      if (!key) continue;
      const { attemptId, taskIndex } = key;
      const jobId = jobIdOfAttempt(attemptId);
      const job = store.table.get(jobId);
      const task = job?.current?.attemptId === attemptId ? job.current.tasks[taskIndex] : undefined;
      if (!task || task.placement.nodeId !== hb.nodeId || (task.state !== 'running' && task.state !== 'assigned')) this.cancelStray(hb.nodeId, jobId, attemptId, [taskIndex]);
    }
  }

  /** Counts missed heartbeats, moves silent nodes to suspect then down, and requeues the jobs of nodes that went down. */
  sweep(): void {
    const { registry, leadership, config, metrics, clock } = this.deps;
    const nowMs = clock.now();
    for (const entry of registry.entries.values()) {
      const missed = Math.max(0, Math.floor((nowMs - entry.lastSeenMs) / config.heartbeatIntervalMs) - 1);
      if (missed > entry.missedHeartbeats) {
        metrics.heartbeatsMissed.inc({ pool: entry.spec.pool }, missed - entry.missedHeartbeats);
        entry.missedHeartbeats = missed;
      }
    }
    const down = registry.sweep(nowMs, config.suspectAfterMs, config.downAfterMs);
    if (down.length > 0) leadership.confirm();
    // When it went down is stored, so its garbage collection counts across restarts.
    for (const node of down) if (config.nodeGcAfterMs > 0 && leadership.leads(node.spec.pool)) void registry.persistDownTime(node).catch((err: Error) => this.deps.log.warn({ nodeId: node.id, err: err.message }, 'could not store when a node went down'));
    for (const node of down) this.awaitingFence.add(node);
    for (const node of this.awaitingFence) {
      if (node.liveness !== 'down' || registry.entries.get(node.id) !== node) {
        this.awaitingFence.delete(node); // back, or registered anew: its agent reports what it still runs
        continue;
      }
      // Requeue only once the node's fence must have fired: its agent has stopped every task by now, so the
      // next attempt cannot overlap the last. Registration refuses fences longer than QY_DOWN_AFTER_MS
      // allows, so with a registered fence this holds when the node goes down; the check keeps it explicit.
      // (A node that declared no fence, such as one of an older agent, is requeued at down-after as before.)
      const fence = node.spec.enforcement?.fence;
      if (fence && !fenceHasFired(fence, nowMs - node.lastSeenMs)) continue;
      this.awaitingFence.delete(node);
      if (leadership.leads(node.spec.pool)) this.requeueJobsOn(node, true, `node ${node.id} is down (no heartbeat for ${config.downAfterMs} ms)`);
    }
    if (config.nodeGcAfterMs > 0) this.collectGarbage(nowMs);
  }

  /**
   * Forgets the nodes down for QY_NODE_GC_AFTER_MS, with nothing placed on them, in the pools this replica leads.
   * A node an operator cordoned or drained is kept: forgotten, it would come back uncordoned when its agent
   * starts again (say, after a repair); the operator removes it (DELETE /v1/nodes/:id).
   */
  private collectGarbage(nowMs: number): void {
    const { registry, leadership, config, log } = this.deps;
    for (const entry of registry.entries.values()) {
      const downForMs = nowMs - (entry.downSinceMs ?? entry.lastSeenMs);
      if (entry.liveness !== 'down' || entry.cordoned || downForMs < config.nodeGcAfterMs || this.awaitingFence.has(entry) || this.forgetting.has(entry.id)) continue;
      if (!leadership.leads(entry.spec.pool) || registry.tasksOn(entry.id) > 0 || nowMs < (this.forgetRetryAtMs.get(entry.id) ?? 0)) continue;
      this.forgetting.add(entry.id);
      void this.forgetNode(entry, 'gc')
        .then(async (forgotten) => {
          this.forgetRetryAtMs.delete(entry.id);
          if (!forgotten) return;
          log.info({ nodeId: entry.id, agentId: entry.agentId, downForMs }, 'forgot a node down longer than QY_NODE_GC_AFTER_MS');
          await this.deps.audit?.()?.append({ actor: { kind: 'system', name: 'node-gc' }, action: 'node.forget', target: entry.id, outcome: 'ok', details: { downForMs, agentId: entry.agentId } });
        })
        .catch((err: Error) => {
          this.forgetRetryAtMs.set(entry.id, nowMs + FORGET_RETRY_MS);
          log.warn({ nodeId: entry.id, err: err.message, retryInMs: FORGET_RETRY_MS }, 'could not forget a down node; trying again later');
        })
        .finally(() => this.forgetting.delete(entry.id));
    }
  }

  /**
   * Forgets a node (down for QY_NODE_GC_AFTER_MS, or removed by an operator): out of every replica's node list;
   * with its agent's last node go the agent's work consumer and the work still queued for it. False when it is
   * no longer this entry or no longer down (registered or heard from again). Refused (rejects) while tasks are
   * placed on it.
   */
  forgetNode(entry: NodeEntry, by: 'gc' | 'operator'): Promise<boolean> {
    const { registry, jsm, metrics } = this.deps;
    const agentId = entry.agentId;
    const run = (this.pendingForget.get(agentId) ?? Promise.resolve()).then(async () => {
      if (!(await registry.forget(entry))) return false;
      metrics.nodesForgotten.inc({ pool: entry.spec.pool, by });
      if (!registry.servesNodes(agentId)) await deleteAgentConsumer(jsm, agentId);
      return true;
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.pendingForget.set(agentId, settled);
    void settled.then(() => {
      if (this.pendingForget.get(agentId) === settled) this.pendingForget.delete(agentId);
    });
    return run;
  }
}
