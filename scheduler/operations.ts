import { formatFailure, jobFromSpec, neverFits } from '../src/core';
import {
  POOLS,
  TERMINAL_JOB_STATES,
  attemptIdOf,
  submissionProblems,
  type JobSpec,
  type JobState,
  type JobSubmitted,
  type GreenView,
  type GreenSignalSource,
  type JobView,
  type NodeView,
  type Pool,
  type PoolView,
  type TaskUsage,
  type TenantView,
} from '../src/protocol';
import {
  QY_ERR_FORBIDDEN,
  QY_ERR_IDEMPOTENCY_KEY_REUSED,
  QY_ERR_JOB_FINISHED,
  QY_ERR_JOB_NOT_FOUND,
  QY_ERR_NODE_NOT_FOUND,
  QY_ERR_NODE_NOT_REMOVABLE,
  QY_ERR_NOT_LEADER,
  QY_ERR_NOT_READY,
  QY_ERR_QUOTA_EXCEEDED,
  QY_ERR_STORE_UNAVAILABLE,
  QY_ERR_TENANT_NOT_FOUND,
  QY_ERR_UNKNOWN_PRIORITY_CLASS,
  QY_ERR_UNSCHEDULABLE,
  QY_ERR_VALIDATION,
} from '../src/errors';
import type { Bill, DisclosureReport, UsageSummary } from '../src/billing';
import { Accounting, type UsageQuery } from './accounting';
import { newJobId } from './ids';
import type { AuditActor, AuditEntry, AuditRecord } from '../src/store/audit-log';
import { AuditReads, type AuditListFilter, type AuditVerdict } from './audit-reads';
import { HistoryReads, type FoundJob } from './history-reads';
import { taskOutput, type JobLogTail } from './job-logs';
import type { NodeEntry } from './nodes';
import { NotLeaderError } from './leadership';
import type { OperationsDeps } from './operations-deps';
import { archivedJobView, jobView } from './state/views';
import type { Principal, Quotas } from './tenants';
import { DatasetOps } from './federation/datasets';
import { FederatedOperations, isJobNotFound } from './federation/operations';

/** The audit actor of a principal. */
export function actorOf(principal: Principal): AuditActor {
  return principal.kind === 'tenant' && principal.via ? { kind: principal.kind, name: principal.name, via: principal.via } : { kind: principal.kind, name: principal.name };
}

/** The scheduler's API operations, as the HTTP routes and the CLI use them. Errors are the QY_ERR_* types. */
export class SchedulerOperations {
  private readonly submitting = new Map<string, { specJson: string; done: Promise<{ id: string; state: JobState; replayed: boolean }> }>();
  /** Jobs, usage and jobs served, from memory and the accounting archive. */
  private readonly history: HistoryReads;
  /** The audit chain, from the archive and the live stream. */
  private readonly auditReads: AuditReads;
  /** Usage, bills and disclosure over memory and the archive. */
  private readonly accounting: Accounting;
  /** Datasets: registration, lineage, destruction. */
  readonly datasets: DatasetOps;
  /** Routing at submission and the jobs routed to other sites. */
  readonly federated: FederatedOperations;

  constructor(private readonly s: OperationsDeps) {
    this.history = new HistoryReads(s);
    this.auditReads = new AuditReads(s);
    this.accounting = new Accounting(s, this.history);
    this.datasets = new DatasetOps({ store: s.datasetStore, clock: s.clock, site: s.config.site, sites: s.federationFile?.sites.map((x) => x.name) ?? [], audited: (actor, entry) => this.audited(actor, entry) });
    this.federated = new FederatedOperations(s, this);
  }

  /**
   * Accepts a job: answers once the submission is stored in JetStream. A repeated Idempotency-Key (per
   * tenant) returns the first job instead of creating another, whether it is still in memory or only in the
   * archive; the same key with another body is refused. While the archive is down, a key memory does not
   * know is refused with 503 (its first job may have left memory), so a retry never runs a job twice.
   */
  async submit(spec: JobSpec, principal: Principal, idempotencyKey: string | undefined): Promise<{ id: string; state: JobState; replayed: boolean }> {
    this.assertLeader(spec.pool);
    if (principal.kind !== 'tenant') throw new QY_ERR_FORBIDDEN(`only tenants submit jobs; ${principal.name} is an operator`);
    const tenant = principal.name;
    if (!this.s.tenants.mayUseClass(tenant, spec.priorityClass)) throw new QY_ERR_FORBIDDEN(`tenant ${tenant} may not use priority class ${spec.priorityClass}`);
    if (!this.s.tenants.mayUseDataClass(tenant, spec.dataClass)) throw new QY_ERR_FORBIDDEN(`tenant ${tenant} may not submit ${spec.dataClass} data`);
    const specJson = JSON.stringify(spec);
    if (idempotencyKey === undefined) return this.routeAndAccept(spec, principal, undefined);
    const existing = this.s.store.table.byKey(tenant, idempotencyKey);
    if (existing) {
      if (JSON.stringify(existing.spec) !== specJson) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
      return { id: existing.id, state: existing.state, replayed: true };
    }
    const key = `${tenant}\u0000${idempotencyKey}`;
    const inFlight = this.submitting.get(key);
    if (inFlight) {
      if (inFlight.specJson !== specJson) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
      return { ...(await inFlight.done), replayed: true };
    }
    // Registered before the archive is asked, so a concurrent retry waits for this one instead of asking too.
    const done = (async () => {
      // A job the key made may have been routed to another site: its record is in this site's claims bucket.
      const away = await this.federated.replayAway(tenant, idempotencyKey, specJson);
      if (away) return away;
      const archived = await this.history.archivedByIdempotencyKey(tenant, idempotencyKey);
      if (!archived) return this.routeAndAccept(spec, principal, idempotencyKey);
      if (JSON.stringify(archived.spec) !== specJson) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
      return { id: archived.view.id, state: archived.view.state, replayed: true };
    })();
    this.submitting.set(key, { specJson, done });
    try {
      return await done;
    } finally {
      this.submitting.delete(key);
    }
  }

  /** Routes a new job (when federated): to another site under a claim, or here. */
  private async routeAndAccept(spec: JobSpec, principal: Principal & { kind: 'tenant' }, idempotencyKey: string | undefined): Promise<{ id: string; state: JobState; replayed: boolean }> {
    // A new job only: a retry of one accepted before these rules was answered above.
    const problems = submissionProblems(spec);
    if (problems.length > 0) throw new QY_ERR_VALIDATION(problems.join('; '));
    const { inputs, decision } = await this.federated.route(spec, principal);
    if (decision && decision.site !== this.s.config.site) return this.federated.submitAway(spec, principal, decision, inputs, idempotencyKey);
    return this.accept(spec, principal, idempotencyKey, decision?.reason);
  }

  /** Checks the pending-jobs quota, stores the submission and audits it. */
  private async accept(spec: JobSpec, principal: Principal & { kind: 'tenant' }, idempotencyKey?: string, route?: string): Promise<{ id: string; state: JobState; replayed: false }> {
    const tenant = principal.name;
    const pendingLimit = this.s.tenants.quotaOf(tenant, spec.pool).pendingJobs;
    if (pendingLimit !== undefined && this.s.store.pending.sizeOfTenant(tenant, spec.pool) + 1 > pendingLimit) {
      throw new QY_ERR_QUOTA_EXCEEDED(tenant, `${spec.pool} pending jobs (${pendingLimit})`);
    }
    const r = await this.storeJob(spec, tenant, idempotencyKey, route === undefined ? undefined : { route });
    this.s.metrics.jobsSubmitted.inc({ pool: spec.pool, tenant });
    await this.audited(principal, { action: 'job.submit', target: r.id, details: { pool: spec.pool, priorityClass: spec.priorityClass, tasks: spec.tasks, ...(route === undefined ? {} : { site: this.s.config.site, route }) } });
    if (spec.inputs || spec.outputs) await this.datasets.recordUse(r.id, spec, principal, this.s.config.site ?? 'local');
    return { ...r, replayed: false };
  }

  /**
   * Stores a job in the job log (placed at once when nobody waits ahead of it). `federated` gives the id of a
   * job another site routed here (or this site took back), its home and the router's reason.
   */
  async storeJob(spec: JobSpec, tenant: string, idempotencyKey: string | undefined, federated?: { id?: string; homeSite?: string; route?: string; submittedAtMs?: number }): Promise<{ id: string; state: JobState }> {
    if (federated?.id !== undefined || federated?.homeSite !== undefined) this.assertLeader(spec.pool);
    const priority = this.s.config.priorityClasses[spec.priorityClass];
    if (priority === undefined) throw new QY_ERR_UNKNOWN_PRIORITY_CLASS(spec.priorityClass, Object.keys(this.s.config.priorityClasses).join(', '));
    // A snapshot waits for quiet: this decision waits for it (one append's round trip).
    const gate = this.s.store.gate;
    if (gate) await gate;
    const nowMs = this.s.clock.now();
    let id = federated?.id ?? newJobId(nowMs);
    while (federated?.id === undefined && this.s.store.table.get(id)) id = newJobId(nowMs);
    const submittedAtMs = federated?.submittedAtMs ?? nowMs;
    const sched = jobFromSpec(spec, { id, tenant, priority, submittedAtMs });
    const event: JobSubmitted = { type: 'submitted', v: 1, jobId: id, tenant, spec, submittedAtMs, priority, maxAttempts: this.s.config.maxAttempts, idempotencyKey, homeSite: federated?.homeSite, route: federated?.route };
    if (this.s.store.cluster.nodesOf(spec.pool).length > 0) {
      // Nobody queued ahead of it in its pool: place it now and store submission and placement as one message.
      const placement = this.s.store.pending.queuedIn(spec.pool) === 0 ? this.s.cycle.placeNow(sched) : undefined;
      if (placement) event.placed = { attempt: 1, attemptId: attemptIdOf(id, 1), placement };
      else {
        const never = neverFits(this.s.store.cluster, this.s.cycle.pipeline.preparedOf(sched));
        if (never) throw new QY_ERR_UNSCHEDULABLE(spec.pool, formatFailure(never));
      }
    }
    const msgID = federated?.id !== undefined ? `fed:${id}` : idempotencyKey === undefined ? undefined : submitMessageId(tenant, idempotencyKey, this.s.leadership.termOf(spec.pool) ?? 0);
    const { stored } = this.s.store.commit(event, msgID);
    const record = this.s.store.table.get(id);
    if (record) this.s.telemetry.jobEvent(record, 'submitted', { priority_class: spec.priorityClass, tasks: spec.tasks });
    if (!event.placed) this.s.cycle.request();
    try {
      await stored;
    } catch (err) {
      throw storeError(err);
    }
    return { id, state: this.s.store.table.get(id)?.state ?? 'pending' };
  }

  /** A job the principal may see, from memory or, once it has left memory, from the archive (with its spec). */
  async getJob(jobId: string, principal: Principal): Promise<JobView> {
    const found = await this.visibleJob(jobId, principal).catch(async (err) => {
      const remote = isJobNotFound(err) ? await this.federated.remoteView(jobId, principal) : undefined;
      if (remote) return remote;
      throw err;
    });
    if ('id' in found) return found;
    const site = this.s.config.site === undefined ? {} : { site: this.s.config.site };
    return found.where === 'memory' ? { ...jobView(found.record, this.s.store.pending, { withSpec: true }), ...site } : archivedJobView(found.archived, { withSpec: true });
  }

  /** A job the principal may see; another tenant's job is "not found", so ids do not leak. */
  private async visibleJob(jobId: string, principal: Principal): Promise<FoundJob> {
    const found = await this.history.job(jobId);
    const tenant = found?.where === 'memory' ? found.record.tenant : found?.archived.view.tenant;
    if (!found || (principal.kind === 'tenant' && tenant !== principal.name)) throw new QY_ERR_JOB_NOT_FOUND(jobId);
    return found;
  }

  /**
   * Jobs in submission order, filtered, one page at a time (the cursor is the last id of the previous page),
   * from memory and the archive. `since`/`until` select the jobs in the system during the window, as sacct does.
   */
  listJobs(filter: { state?: JobState; pool?: Pool; tenant?: string; since?: string; until?: string; limit: number; cursor?: string }, principal: Principal): Promise<{ items: JobView[]; nextCursor?: string }> {
    const { since, until, ...rest } = filter;
    return this.history.jobs({
      ...rest,
      tenant: principal.kind === 'tenant' ? principal.name : filter.tenant,
      sinceMs: since === undefined ? undefined : Date.parse(since),
      untilMs: until === undefined ? undefined : Date.parse(until),
    });
  }

  /** Cancels a job: a pending one leaves the queue, a running one is stopped by its agents. */
  async cancel(jobId: string, principal: Principal): Promise<{ id: string; state: JobState }> {
    this.assertReady();
    const found = await this.visibleJob(jobId, principal).catch(async (err) => {
      const remote = isJobNotFound(err) ? await this.federated.remoteCancel(jobId, principal) : undefined;
      if (remote) return remote;
      throw err;
    });
    if ('id' in found) return found;
    // A snapshot waits for quiet: this decision waits for it (one append's round trip).
    const gate = this.s.store.gate;
    if (gate) await gate;
    if (found.where === 'archive') {
      this.assertLeader(found.archived.view.pool);
      throw new QY_ERR_JOB_FINISHED(jobId, found.archived.view.state);
    }
    const job = found.record;
    this.assertLeader(job.spec.pool);
    if (TERMINAL_JOB_STATES.has(job.state)) throw new QY_ERR_JOB_FINISHED(jobId, job.state);
    const reason = `cancelled by ${principal.kind} ${principal.name}`;
    if (!job.cancelRequested) {
      const { stored } = this.s.store.commit({ type: 'cancel-requested', jobId, reason, atMs: this.s.clock.now() });
      try {
        await stored;
      } catch (err) {
        throw storeError(err);
      }
      await this.audited(principal, { action: 'job.cancel', target: jobId, details: { tenant: job.tenant } });
    }
    return { id: jobId, state: this.s.store.table.get(jobId)?.state ?? job.state };
  }

  /** The tail of a task's output, asked from the agent that ran it (see `taskOutput`). */
  async jobLog(jobId: string, principal: Principal, taskIndex: number, maxBytes: number): Promise<JobLogTail> {
    const found = await this.visibleJob(jobId, principal).catch(async (err) => {
      const remote = isJobNotFound(err) ? await this.federated.remoteLog(jobId, principal, taskIndex, maxBytes) : undefined;
      if (remote) return remote;
      throw err;
    });
    return 'where' in found ? taskOutput(found, taskIndex, maxBytes, this.s) : found;
  }

  nodes(): NodeView[] {
    return [...this.s.registry.entries.values()].map((e) => this.nodeView(e));
  }

  node(nodeId: string): NodeView {
    const entry = this.s.registry.entries.get(nodeId);
    if (!entry) throw new QY_ERR_NODE_NOT_FOUND(nodeId);
    return this.nodeView(entry);
  }

  /** Cordons (no new work) or uncordons a node. Uncordoning also ends a drain. */
  async cordon(nodeId: string, cordoned: boolean, principal: Principal): Promise<NodeView> {
    this.assertLeader(this.poolOfNode(nodeId));
    const entry = await this.s.registry.setFlags(nodeId, { cordoned, draining: false }).catch((err: Error) => {
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!entry) throw new QY_ERR_NODE_NOT_FOUND(nodeId);
    if (!cordoned) this.s.cycle.retry(entry.spec.pool);
    await this.audited(principal, { action: cordoned ? 'node.cordon' : 'node.uncordon', target: nodeId });
    return this.nodeView(entry);
  }

  /** Drains a node: cordoned, its jobs finish (or, with `requeue`, are stopped now and queued again). */
  async drain(nodeId: string, requeue: boolean, principal: Principal): Promise<NodeView & { requeued: number }> {
    this.assertLeader(this.poolOfNode(nodeId));
    const entry = await this.s.registry.setFlags(nodeId, { cordoned: true, draining: true }).catch((err: Error) => {
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!entry) throw new QY_ERR_NODE_NOT_FOUND(nodeId);
    const requeued = requeue ? this.s.gateway.requeueJobsOn(entry, false, `node ${nodeId} drained`) : 0;
    await this.audited(principal, { action: 'node.drain', target: nodeId, details: { requeue, requeued } });
    return { ...this.nodeView(entry), requeued };
  }

  /**
   * Removes a down node now, as QY_NODE_GC_AFTER_MS does after a while (`kubectl delete node`): gone from every
   * replica's node list, and with its agent's last node its work consumer. Its agent registering again brings
   * it back. Answers with the node as it was.
   */
  async removeNode(nodeId: string, principal: Principal): Promise<NodeView> {
    this.assertLeader(this.poolOfNode(nodeId));
    const entry = this.s.registry.entries.get(nodeId)!;
    if (entry.liveness !== 'down') throw new QY_ERR_NODE_NOT_REMOVABLE(nodeId, `it is ${this.s.registry.stateOf(entry)}; only a down node can be removed (drain it, stop its agent and wait QY_DOWN_AFTER_MS)`);
    const tasks = this.s.registry.tasksOn(nodeId);
    if (tasks > 0) throw new QY_ERR_NODE_NOT_REMOVABLE(nodeId, `${tasks} tasks are still placed on it; they are queued again once its fence must have fired`);
    const view = this.nodeView(entry);
    const forgotten = await this.s.gateway.forgetNode(entry, 'operator').catch((err: Error) => {
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!forgotten) throw new QY_ERR_NODE_NOT_REMOVABLE(nodeId, 'it was heard from again');
    await this.audited(principal, { action: 'node.remove', target: nodeId });
    return view;
  }

  /** Tenants with their weights, quotas and what they use and queue now (operators: all; a tenant: itself). */
  tenants(principal: Principal): TenantView[] {
    return this.s.tenants
      .list()
      .filter((t) => principal.kind === 'operator' || t.name === principal.name)
      .map((t) => this.tenantView(t.name));
  }

  tenant(name: string, principal: Principal): TenantView {
    if (!this.s.tenants.tenant(name) || (principal.kind === 'tenant' && principal.name !== name)) throw new QY_ERR_TENANT_NOT_FOUND(name);
    return this.tenantView(name);
  }

  /** Replaces a tenant's quotas (kept in the qy-quotas bucket, effective at once). */
  async setQuotas(name: string, quotas: Quotas, principal: Principal): Promise<TenantView> {
    // Quotas span pools and every replica follows the bucket: a leader of any pool takes the write.
    this.assertReady();
    if (this.s.leadership.ledPools.length === 0) this.assertLeader('general');
    if (!this.s.tenants.tenant(name)) throw new QY_ERR_TENANT_NOT_FOUND(name);
    const before = this.s.tenants.quotasOf(name);
    try {
      await this.s.quotas.put(name, quotas);
    } catch (err) {
      throw new QY_ERR_STORE_UNAVAILABLE((err as Error).message, { cause: err });
    }
    for (const pool of POOLS) this.s.cycle.retry(pool);
    await this.audited(principal, { action: 'tenant.quota', target: name, details: { before, after: quotas } });
    return this.tenantView(name);
  }

  /** Audit records, oldest first, from `afterSeq` on: the archived prefix and the live stream as one log. */
  auditRecords(filter: AuditListFilter): Promise<AuditRecord[]> {
    return this.auditReads.list(filter);
  }

  /** The whole audit chain checked, archive and live stream as one chain (`GET /v1/audit/verify`). */
  verifyAudit(): Promise<AuditVerdict> {
    return this.auditReads.verify();
  }

  /** Records an action of a principal; a failed audit write is logged (and shows as a gap in the chain). */
  async audited(principal: Principal | AuditActor, entry: Omit<AuditEntry, 'actor' | 'outcome'> & { outcome?: AuditEntry['outcome'] }): Promise<void> {
    const actor = 'kind' in principal && (principal.kind === 'tenant' || principal.kind === 'operator') ? actorOf(principal as Principal) : (principal as AuditActor);
    if (!this.s.audit) return; // not started: nothing to audit into yet
    await this.s.audit.append({ outcome: 'ok', ...entry, actor }).catch((err: Error) => this.s.log.error({ err: err.message, action: entry.action }, 'audit record not stored'));
  }

  private tenantView(name: string): TenantView {
    const t = this.s.tenants.tenant(name)!;
    const quotas = this.s.tenants.quotasOf(name);
    return {
      name,
      displayName: t.displayName,
      weight: t.weight,
      priorityClasses: t.priorityClasses,
      dataClasses: t.dataClasses,
      billingClass: t.billingClass,
      pools: POOLS.map((pool) => {
        const used = this.s.store.cluster.usageOf(name, pool);
        return {
          pool,
          quota: quotas[pool] ?? {},
          used: { cpuMillis: used.cpuMillis, memBytes: used.memBytes, gpuMilli: used.gpuMilli, runningJobs: used.jobs, pendingJobs: this.s.store.pending.sizeOfTenant(name, pool) },
        };
      }),
    };
  }

  // ---- Usage, bills and disclosure (from memory and the archive: see Accounting) ------------------------------

  /** Metered use in a period (`YYYY-MM` or `YYYY-MM-DD`, local time): a tenant sees only its own. */
  async usage(filter: UsageQuery, principal: Principal): Promise<UsageSummary & { period: string; interval: string }> {
    return (await this.federated.remoteUsage(filter, principal)) ?? this.accounting.usage(filter, principal);
  }

  /** Metered usage per task in a period (a tenant sees only its own). */
  usageTasks(filter: UsageQuery, principal: Principal): Promise<{ period: string; interval: string; items: TaskUsage[] }> {
    return this.accounting.usageTasks(filter, principal);
  }

  /** A tenant's bill for a period; a tenant may fetch only its own. */
  bill(tenant: string, period: string, principal: Principal): Promise<Bill> {
    return this.accounting.bill(tenant, period, principal);
  }

  /** The public disclosure report of a period (operators). */
  disclosure(period: string): Promise<DisclosureReport> {
    return this.accounting.disclosure(period);
  }

  /** Where the green signal comes from now, with the live feed's age. */
  greenSignalSource(): GreenSignalSource {
    return this.s.green.source(this.s.clock.now());
  }

  pools(): PoolView[] {
    const counts: Record<Pool, { placed: number; running: number }> = { general: { placed: 0, running: 0 }, intelligent: { placed: 0, running: 0 }, super: { placed: 0, running: 0 } };
    for (const jobId of this.s.store.cluster.placedJobIds()) {
      const job = this.s.store.table.get(jobId);
      if (job?.state === 'placed') counts[job.spec.pool].placed++;
      else if (job?.state === 'running' || job?.state === 'cancelling') counts[job.spec.pool].running++;
    }
    return POOLS.map((pool) => {
      const s = this.s.store.cluster.poolSummary(pool);
      return { pool, nodes: s.nodes, capacity: s.allocatable, allocated: s.allocated, queue: { pending: this.s.store.pending.sizeOf(pool) }, jobs: counts[pool] };
    });
  }

  private nodeView(entry: NodeEntry): NodeView {
    const node = this.s.store.cluster.getNode(entry.id);
    const alloc = entry.spec.allocatable ?? entry.spec.capacity;
    return {
      id: entry.id,
      pool: entry.spec.pool,
      state: this.s.registry.stateOf(entry),
      cordoned: entry.cordoned,
      draining: entry.draining,
      zone: entry.spec.zone,
      rack: entry.spec.rack,
      gpuModel: entry.spec.gpuModel,
      labels: entry.spec.labels,
      securityLevel: entry.spec.securityLevel,
      allocatable: { cpuMillis: alloc.cpuMillis, memBytes: alloc.memBytes, gpus: alloc.gpus },
      allocated: { cpuMillis: node?.requestedCpuMillis ?? 0, memBytes: node?.requestedMemBytes ?? 0, gpuMilli: node?.usedGpuMilli() ?? 0 },
      tasks: node?.taskCount ?? 0,
      powerWatts: entry.lastHeartbeat?.powerWatts ?? 0,
      greenShare: entry.lastHeartbeat?.greenShare ?? 0,
      lastHeartbeatAt: entry.lastHeartbeat ? new Date(entry.lastSeenMs).toISOString() : undefined,
      enforcement: entry.spec.enforcement,
    };
  }

  /** The pool of a registered node; unknown nodes are "not found" before any leadership question. */
  private poolOfNode(nodeId: string): Pool {
    this.assertReady();
    const entry = this.s.registry.entries.get(nodeId);
    if (!entry) throw new QY_ERR_NODE_NOT_FOUND(nodeId);
    return entry.spec.pool;
  }

  private assertReady(): void {
    if (!this.s.ready) throw new QY_ERR_NOT_READY(this.s.notReadyReason);
  }

  /** A pool's writes go to its leader alone; another replica names it. */
  private assertLeader(pool: Pool): void {
    this.assertReady();
    this.s.leadership.confirm();
    if (!this.s.leadership.leads(pool)) throw notLeader(new NotLeaderError(pool, this.s.leadership.leaderOf(pool)));
  }

  /** The green signal now and ahead, the pools' power, and the jobs held for greener power (a tenant: its own). For the console. */
  green(principal: Principal, horizonMs: number): GreenView {
    const nowMs = this.s.clock.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const power = this.s.registry.poolPower();
    // Held jobs come soonest release first.
    const deferred = this.s.store.pending.heldJobs().flatMap(({ job: held, hold }) => {
      const job = this.s.store.table.get(held.id);
      if (job?.state !== 'pending' || (principal.kind === 'tenant' && job.tenant !== principal.name)) return [];
      return [{ id: job.id, name: job.spec.name, tenant: job.tenant, pool: job.spec.pool, plannedStartAt: iso(hold.untilMs), reason: hold.reason }];
    });
    return {
      at: iso(nowMs),
      signal: { ...this.s.green.source(nowMs), gPerKwh: this.s.green.signalAt(nowMs), gridGPerKwh: this.s.green.carbonAt(nowMs) },
      forecast: this.s.green.planForecast(nowMs, nowMs + horizonMs).map((p) => ({ at: iso(p.atMs), gPerKwh: p.value })),
      forecaster: this.s.green.forecasterView(),
      deferral: { enabled: this.s.config.greenDeferral, stepMs: this.s.config.greenStepMs },
      pools: POOLS.map((pool) => ({ pool, nodes: power[pool].nodes, powerWatts: power[pool].watts, greenWatts: power[pool].greenWatts, deferralShare: this.s.green.planner.bookingShare(pool) })),
      deferred,
    };
  }
}

/** A standby's refusal, with the leader's address for the X-Qy-Leader header. */
export function notLeader(err: NotLeaderError): Error {
  return Object.assign(new QY_ERR_NOT_LEADER(err.message), { leaderUrl: err.leader?.address });
}

/** Why a write did not land: leadership moved on, or JetStream failed. */
function storeError(err: unknown): Error {
  if (err instanceof NotLeaderError) return notLeader(err);
  return new QY_ERR_STORE_UNAVAILABLE((err as Error).message, { cause: err });
}

/**
 * The JetStream message id of an idempotent submission: a retry in the same term is dropped as a duplicate.
 * It names the term: a deposed leader's copy, fenced off from history, must not make JetStream drop the
 * new leader's within the duplicate window.
 */
export function submitMessageId(tenant: string, idempotencyKey: string, term: number): string {
  return `submit:${tenant}:${idempotencyKey}:${term}`;
}
