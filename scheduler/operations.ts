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
} from '../src/protocol';
import {
  QY_ERR_AGENT_UNAVAILABLE,
  QY_ERR_IDEMPOTENCY_KEY_REUSED,
  QY_ERR_JOB_FINISHED,
  QY_ERR_JOB_NOT_FOUND,
  QY_ERR_LOG_UNAVAILABLE,
  QY_ERR_NODE_NOT_FOUND,
  QY_ERR_NOT_READY,
  QY_ERR_STORE_UNAVAILABLE,
  QY_ERR_UNKNOWN_PRIORITY_CLASS,
  QY_ERR_UNSCHEDULABLE,
} from '../src/errors';
import { newJobId } from './ids';
import type { NodeEntry } from './nodes';
import type { Scheduler } from './service';
import { jobView } from './state/views';

/** The scheduler's API operations, as the HTTP routes and the CLI use them. Errors are the QY_ERR_* types. */
export class SchedulerOperations {
  private readonly submitting = new Map<string, { specJson: string; done: Promise<{ id: string; state: JobState }> }>();

  constructor(private readonly s: Scheduler) {}

  /**
   * Accepts a job: answers once the submission is stored in JetStream. A repeated Idempotency-Key (per
   * tenant) returns the first job instead of creating another; the same key with another body is refused.
   */
  async submit(spec: JobSpec, tenant: string, idempotencyKey: string | undefined): Promise<{ id: string; state: JobState; replayed: boolean }> {
    this.assertReady();
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
    const done = this.store(spec, tenant, idempotencyKey);
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
    const { stored } = this.s.commit(event, idempotencyKey === undefined ? undefined : `submit:${tenant}:${idempotencyKey}`);
    if (!event.placed) this.s.requestCycle();
    try {
      await stored;
    } catch (err) {
      throw new QY_ERR_STORE_UNAVAILABLE((err as Error).message, { cause: err });
    }
    return { id, state: this.s.table.get(id)?.state ?? 'pending' };
  }

  getJob(jobId: string): JobView {
    const job = this.s.table.get(jobId);
    if (!job) throw new QY_ERR_JOB_NOT_FOUND(jobId);
    return jobView(job, this.s.pending);
  }

  /** Jobs in submission order, filtered, one page at a time (the cursor is the last id of the previous page). */
  listJobs(filter: { state?: JobState; pool?: Pool; limit: number; cursor?: string }): { items: JobView[]; nextCursor?: string } {
    const items: JobView[] = [];
    let more = false;
    for (const job of this.s.table.jobs.values()) {
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
  async cancel(jobId: string, reason = 'cancelled by user'): Promise<{ id: string; state: JobState }> {
    this.assertReady();
    const job = this.s.table.get(jobId);
    if (!job) throw new QY_ERR_JOB_NOT_FOUND(jobId);
    if (TERMINAL_JOB_STATES.has(job.state)) throw new QY_ERR_JOB_FINISHED(jobId, job.state);
    if (!job.cancelRequested) {
      const { stored } = this.s.commit({ type: 'cancel-requested', jobId, reason, atMs: this.s.now() });
      try {
        await stored;
      } catch (err) {
        throw new QY_ERR_STORE_UNAVAILABLE((err as Error).message, { cause: err });
      }
    }
    return { id: jobId, state: this.s.table.get(jobId)?.state ?? job.state };
  }

  /** The tail of a task's output, asked from the agent that ran it. */
  async jobLog(jobId: string, taskIndex: number, maxBytes: number): Promise<{ jobId: string; attemptId: string; taskIndex: number; nodeId: string; text: string; truncated: boolean }> {
    const job = this.s.table.get(jobId);
    if (!job) throw new QY_ERR_JOB_NOT_FOUND(jobId);
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
  async cordon(nodeId: string, cordoned: boolean): Promise<NodeView> {
    this.assertReady();
    const entry = await this.s.registry.setFlags(nodeId, { cordoned, draining: false }).catch((err: Error) => {
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!entry) throw new QY_ERR_NODE_NOT_FOUND(nodeId);
    if (!cordoned) {
      this.s.pending.markDirty(entry.spec.pool);
      this.s.requestCycle();
    }
    return this.nodeView(entry);
  }

  /** Drains a node: cordoned, its jobs finish (or, with `requeue`, are stopped now and queued again). */
  async drain(nodeId: string, requeue: boolean): Promise<NodeView & { requeued: number }> {
    this.assertReady();
    const entry = await this.s.registry.setFlags(nodeId, { cordoned: true, draining: true }).catch((err: Error) => {
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!entry) throw new QY_ERR_NODE_NOT_FOUND(nodeId);
    const requeued = requeue ? this.s.requeueJobsOn(entry, false, `node ${nodeId} drained`) : 0;
    return { ...this.nodeView(entry), requeued };
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

  private assertReady(): void {
    if (!this.s.ready) throw new QY_ERR_NOT_READY(this.s.notReadyReason);
  }
}
