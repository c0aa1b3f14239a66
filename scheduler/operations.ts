import { formatFailure, jobFromSpec, neverFits, prepareJob } from '../src/core';
import {
  POOLS,
  TERMINAL_JOB_STATES,
  attemptIdOf,
  logReplySchema,
  subjects,
  type JobSpec,
  type JobState,
  type JobSubmitted,
  type JobView,
  type LogRequest,
  type NodeView,
  type Pool,
  type PoolView,
  type TenantView,
} from '../src/protocol';
import {
  QY_ERR_AGENT_UNAVAILABLE,
  QY_ERR_FORBIDDEN,
  QY_ERR_IDEMPOTENCY_KEY_REUSED,
  QY_ERR_JOB_FINISHED,
  QY_ERR_JOB_NOT_FOUND,
  QY_ERR_LOG_UNAVAILABLE,
  QY_ERR_NODE_NOT_FOUND,
  QY_ERR_NOT_LEADER,
  QY_ERR_NOT_READY,
  QY_ERR_QUOTA_EXCEEDED,
  QY_ERR_STORE_UNAVAILABLE,
  QY_ERR_TENANT_NOT_FOUND,
  QY_ERR_UNKNOWN_PRIORITY_CLASS,
  QY_ERR_UNSCHEDULABLE,
} from '../src/errors';
import { billFor, disclosureReport, periodRange, summarize, type Bill, type DisclosureReport, type JobsServed, type PoolCapacity, type UsageSummary } from '../src/billing';
import { newJobId } from './ids';
import type { AuditActor, AuditEntry, AuditRecord } from '../src/store/audit-log';
import type { NodeEntry } from './nodes';
import { NotLeaderError, type Scheduler } from './service';
import type { JobRecord } from './state/job-table';
import { jobView } from './state/views';
import type { Principal, Quotas } from './tenants';

/** The audit actor of a principal. */
export function actorOf(principal: Principal): AuditActor {
  return principal.kind === 'tenant' && principal.via ? { kind: principal.kind, name: principal.name, via: principal.via } : { kind: principal.kind, name: principal.name };
}

/** The scheduler's API operations, as the HTTP routes and the CLI use them. Errors are the QY_ERR_* types. */
export class SchedulerOperations {
  private readonly submitting = new Map<string, { specJson: string; done: Promise<{ id: string; state: JobState }> }>();

  constructor(private readonly s: Scheduler) {}

  /**
   * Accepts a job: answers once the submission is stored in JetStream. A repeated Idempotency-Key (per
   * tenant) returns the first job instead of creating another; the same key with another body is refused.
   */
  async submit(spec: JobSpec, principal: Principal, idempotencyKey: string | undefined): Promise<{ id: string; state: JobState; replayed: boolean }> {
    this.assertLeader(spec.pool);
    if (principal.kind !== 'tenant') throw new QY_ERR_FORBIDDEN(`only tenants submit jobs; ${principal.name} is an operator`);
    const tenant = principal.name;
    if (!this.s.tenants.mayUseClass(tenant, spec.priorityClass)) throw new QY_ERR_FORBIDDEN(`tenant ${tenant} may not use priority class ${spec.priorityClass}`);
    if (!this.s.tenants.mayUseDataClass(tenant, spec.dataClass)) throw new QY_ERR_FORBIDDEN(`tenant ${tenant} may not submit ${spec.dataClass} data`);
    const specJson = JSON.stringify(spec);
    if (idempotencyKey !== undefined) {
      const existing = this.s.table.byKey(tenant, idempotencyKey);
      if (existing) {
        if (JSON.stringify(existing.spec) !== specJson) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
        return { id: existing.id, state: existing.state, replayed: true };
      }
      const inFlight = this.submitting.get(`${tenant}\u0000${idempotencyKey}`);
      if (inFlight) {
        if (inFlight.specJson !== specJson) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
        return { ...(await inFlight.done), replayed: true };
      }
    }
    const pendingLimit = this.s.tenants.quotaOf(tenant, spec.pool).pendingJobs;
    if (pendingLimit !== undefined && this.s.pending.sizeOfTenant(tenant, spec.pool) + 1 > pendingLimit) {
      throw new QY_ERR_QUOTA_EXCEEDED(tenant, `${spec.pool} pending jobs (${pendingLimit})`);
    }
    const done = this.store(spec, tenant, idempotencyKey).then(async (r) => {
      this.s.metrics.jobsSubmitted.inc({ pool: spec.pool, tenant });
      await this.audited(principal, { action: 'job.submit', target: r.id, details: { pool: spec.pool, priorityClass: spec.priorityClass, tasks: spec.tasks } });
      return r;
    });
    if (idempotencyKey === undefined) return { ...(await done), replayed: false };
    const key = `${tenant}\u0000${idempotencyKey}`;
    this.submitting.set(key, { specJson, done });
    try {
      return { ...(await done), replayed: false };
    } finally {
      this.submitting.delete(key);
    }
  }

  private async store(spec: JobSpec, tenant: string, idempotencyKey: string | undefined): Promise<{ id: string; state: JobState }> {
    const priority = this.s.config.priorityClasses[spec.priorityClass];
    if (priority === undefined) throw new QY_ERR_UNKNOWN_PRIORITY_CLASS(spec.priorityClass, Object.keys(this.s.config.priorityClasses).join(', '));
    const nowMs = this.s.now();
    let id = newJobId(nowMs);
    while (this.s.table.get(id)) id = newJobId(nowMs);
    const sched = jobFromSpec(spec, { id, tenant, priority, submittedAtMs: nowMs });
    const event: JobSubmitted = { type: 'submitted', v: 1, jobId: id, tenant, spec, submittedAtMs: nowMs, priority, maxAttempts: this.s.config.maxAttempts, idempotencyKey };
    if (this.s.cluster.nodesOf(spec.pool).length > 0) {
      const prepared = prepareJob(sched, this.s.policy);
      // Nobody waits ahead of it in its pool: place it now and store submission and placement as one message.
      const placement = this.s.pending.sizeOf(spec.pool) === 0 ? this.s.placeNow(prepared) : undefined;
      if (placement) event.placed = { attempt: 1, attemptId: attemptIdOf(id, 1), placement };
      else {
        const never = neverFits(this.s.cluster, prepared);
        if (never) throw new QY_ERR_UNSCHEDULABLE(spec.pool, formatFailure(never));
      }
    }
    const msgID = idempotencyKey === undefined ? undefined : submitMessageId(tenant, idempotencyKey, this.s.led.get(spec.pool) ?? 0);
    const { stored } = this.s.commit(event, msgID);
    const record = this.s.table.get(id);
    if (record) this.s.jobEvent(record, 'submitted', { priority_class: spec.priorityClass, tasks: spec.tasks });
    if (!event.placed) this.s.requestCycle();
    try {
      await stored;
    } catch (err) {
      throw storeError(err);
    }
    return { id, state: this.s.table.get(id)?.state ?? 'pending' };
  }

  getJob(jobId: string, principal: Principal): JobView {
    return jobView(this.visibleJob(jobId, principal), this.s.pending);
  }

  /** A job the principal may see; another tenant's job is "not found", so ids do not leak. */
  private visibleJob(jobId: string, principal: Principal): JobRecord {
    const job = this.s.table.get(jobId);
    if (!job || (principal.kind === 'tenant' && job.tenant !== principal.name)) throw new QY_ERR_JOB_NOT_FOUND(jobId);
    return job;
  }

  /** Jobs in submission order, filtered, one page at a time (the cursor is the last id of the previous page). */
  listJobs(filter: { state?: JobState; pool?: Pool; tenant?: string; limit: number; cursor?: string }, principal: Principal): { items: JobView[]; nextCursor?: string } {
    const items: JobView[] = [];
    let more = false;
    const tenant = principal.kind === 'tenant' ? principal.name : filter.tenant;
    for (const job of this.s.table.jobs.values()) {
      if (tenant !== undefined && job.tenant !== tenant) continue;
      if (filter.cursor !== undefined && job.id <= filter.cursor) continue;
      if (filter.state && job.state !== filter.state) continue;
      if (filter.pool && job.spec.pool !== filter.pool) continue;
      if (items.length === filter.limit) {
        more = true;
        break;
      }
      items.push(jobView(job, this.s.pending));
    }
    return { items, nextCursor: more ? items[items.length - 1]?.id : undefined };
  }

  /** Cancels a job: a pending one leaves the queue, a running one is stopped by its agents. */
  async cancel(jobId: string, principal: Principal): Promise<{ id: string; state: JobState }> {
    this.assertReady();
    const job = this.visibleJob(jobId, principal);
    this.assertLeader(job.spec.pool);
    if (TERMINAL_JOB_STATES.has(job.state)) throw new QY_ERR_JOB_FINISHED(jobId, job.state);
    const reason = `cancelled by ${principal.kind} ${principal.name}`;
    if (!job.cancelRequested) {
      const { stored } = this.s.commit({ type: 'cancel-requested', jobId, reason, atMs: this.s.now() });
      try {
        await stored;
      } catch (err) {
        throw storeError(err);
      }
      await this.audited(principal, { action: 'job.cancel', target: jobId, details: { tenant: job.tenant } });
    }
    return { id: jobId, state: this.s.table.get(jobId)?.state ?? job.state };
  }

  /** The tail of a task's output, asked from the agent that ran it. */
  async jobLog(jobId: string, principal: Principal, taskIndex: number, maxBytes: number): Promise<{ jobId: string; attemptId: string; taskIndex: number; nodeId: string; text: string; truncated: boolean }> {
    const job = this.visibleJob(jobId, principal);
    const attempt = job.current ?? job.attempts[job.attempts.length - 1];
    if (!attempt) throw new QY_ERR_LOG_UNAVAILABLE(jobId, 'it has not been placed yet');
    const task = attempt.tasks[taskIndex];
    if (!task) throw new QY_ERR_LOG_UNAVAILABLE(jobId, `it has no task ${taskIndex}`);
    const nodeId = task.placement.nodeId;
    const request: LogRequest = { jobId, attemptId: attempt.attemptId, taskIndex, maxBytes };
    let replyBody: unknown;
    try {
      const msg = await this.s.nc.request(subjects.log(nodeId), JSON.stringify(request), { timeout: 3_000 });
      replyBody = msg.json();
    } catch (err) {
      throw new QY_ERR_AGENT_UNAVAILABLE(nodeId, (err as Error).message);
    }
    const reply = logReplySchema.safeParse(replyBody);
    if (!reply.success) throw new QY_ERR_AGENT_UNAVAILABLE(nodeId, 'unreadable reply');
    if (!reply.data.ok) throw new QY_ERR_LOG_UNAVAILABLE(jobId, reply.data.message);
    return { jobId, attemptId: attempt.attemptId, taskIndex, nodeId, text: reply.data.text, truncated: reply.data.truncated };
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
    if (!cordoned) {
      this.s.pending.markDirty(entry.spec.pool);
      this.s.requestCycle();
    }
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
    const requeued = requeue ? this.s.requeueJobsOn(entry, false, `node ${nodeId} drained`) : 0;
    await this.audited(principal, { action: 'node.drain', target: nodeId, details: { requeue, requeued } });
    return { ...this.nodeView(entry), requeued };
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
    if (this.s.led.size === 0) this.assertLeader('general');
    if (!this.s.tenants.tenant(name)) throw new QY_ERR_TENANT_NOT_FOUND(name);
    const before = this.s.tenants.quotasOf(name);
    try {
      await this.s.quotasKv.put(name, JSON.stringify(quotas));
    } catch (err) {
      throw new QY_ERR_STORE_UNAVAILABLE((err as Error).message, { cause: err });
    }
    this.s.tenants.setQuotaOverride(name, quotas);
    for (const pool of POOLS) this.s.pending.markDirty(pool);
    this.s.requestCycle();
    await this.audited(principal, { action: 'tenant.quota', target: name, details: { before, after: quotas } });
    return this.tenantView(name);
  }

  /** Audit records, oldest first, from `afterSeq` on. */
  auditRecords(filter: { afterSeq?: number; limit: number; actor?: string; action?: string; target?: string; sinceMs?: number }): Promise<AuditRecord[]> {
    return this.s.audit.list(filter);
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
        const used = this.s.cluster.usageOf(name, pool);
        return {
          pool,
          quota: quotas[pool] ?? {},
          used: { cpuMillis: used.cpuMillis, memBytes: used.memBytes, gpuMilli: used.gpuMilli, runningJobs: used.jobs, pendingJobs: this.s.pending.sizeOfTenant(name, pool) },
        };
      }),
    };
  }

  // ---- Usage, bills and disclosure ----------------------------------------------------------------------

  /** Metered use in a period (`YYYY-MM` or `YYYY-MM-DD`, local time): a tenant sees only its own. */
  usage(filter: { period: string; tenant?: string; pool?: Pool; jobId?: string }, principal: Principal): UsageSummary & { period: string; interval: string } {
    const tenant = principal.kind === 'tenant' ? principal.name : filter.tenant;
    if (principal.kind === 'tenant' && filter.tenant && filter.tenant !== principal.name) throw new QY_ERR_TENANT_NOT_FOUND(filter.tenant);
    const range = periodRange(filter.period, this.s.prices.timeZoneOffsetMinutes);
    const summary = summarize(this.s.usage.all(), { tenant, pool: filter.pool, jobId: filter.jobId, fromMs: range.fromMs, toMs: range.toMs });
    return { period: range.period, interval: range.interval, ...summary };
  }

  /** A tenant's bill for a period, from the price table; a tenant may fetch only its own. */
  bill(tenant: string, period: string, principal: Principal): Bill {
    if (!this.s.tenants.tenant(tenant) || (principal.kind === 'tenant' && principal.name !== tenant)) throw new QY_ERR_TENANT_NOT_FOUND(tenant);
    return billFor(tenant, period, this.s.usage.all(), this.s.prices);
  }

  /** The public disclosure report of a period: capacity, use per tenant and pool, energy and carbon, jobs served (operators). */
  disclosure(period: string): DisclosureReport {
    const range = periodRange(period, this.s.prices.timeZoneOffsetMinutes);
    const capacity: Partial<Record<Pool, PoolCapacity>> = {};
    for (const pool of POOLS) {
      const nodes = this.s.cluster.nodesOf(pool);
      if (nodes.length === 0) continue;
      capacity[pool] = {
        nodes: nodes.length,
        cores: Math.round(nodes.reduce((n, x) => n + x.allocatable.cpuMillis, 0) / 1000),
        gpus: nodes.reduce((n, x) => n + x.allocatable.gpus, 0),
        gpuModels: [...new Set(nodes.flatMap((x) => (x.spec.gpuModel ? [x.spec.gpuModel] : [])))].sort(),
      };
    }
    const jobsServed: Partial<Record<Pool, JobsServed>> = {};
    for (const job of this.s.table.jobs.values()) {
      if (job.finishedAtMs === undefined || job.finishedAtMs < range.fromMs || job.finishedAtMs >= range.toMs) continue;
      const served = (jobsServed[job.spec.pool] ??= {});
      served[job.state] = (served[job.state] ?? 0) + 1;
    }
    return disclosureReport({ period, usages: this.s.usage.all(), capacity, jobsServed, timeZoneOffsetMinutes: this.s.prices.timeZoneOffsetMinutes });
  }

  pools(): PoolView[] {
    const counts: Record<Pool, { placed: number; running: number }> = { general: { placed: 0, running: 0 }, intelligent: { placed: 0, running: 0 }, super: { placed: 0, running: 0 } };
    for (const jobId of this.s.cluster.placedJobIds()) {
      const job = this.s.table.get(jobId);
      if (job?.state === 'placed') counts[job.spec.pool].placed++;
      else if (job?.state === 'running' || job?.state === 'cancelling') counts[job.spec.pool].running++;
    }
    return POOLS.map((pool) => {
      const s = this.s.cluster.poolSummary(pool);
      return { pool, nodes: s.nodes, capacity: s.allocatable, allocated: s.allocated, queue: { pending: this.s.pending.sizeOf(pool) }, jobs: counts[pool] };
    });
  }

  private nodeView(entry: NodeEntry): NodeView {
    const node = this.s.cluster.getNode(entry.id);
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
    this.s.confirmLeadership();
    if (!this.s.leads(pool)) throw notLeader(new NotLeaderError(pool, this.s.leaderOf(pool)));
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
