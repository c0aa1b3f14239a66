import { ClusterState, PendingQueue, jobFromSpec, type Placement, type SchedJob, type TaskPlacement } from '../../src/core';
import { TERMINAL_JOB_STATES, isTerminalTaskState, type MeasuredUsage, type JobCancelRequested, type JobPlaced, type JobPreempted, type JobRequeued, type JobSpec, type JobState, type JobSubmitted, type StatusReport, type TaskState, type UsageSegment } from '../../src/protocol';

/** One task of an attempt: where it runs and how it stands. */
export interface TaskRecord {
  placement: TaskPlacement;
  state: 'assigned' | TaskState;
  exitCode?: number;
  signal?: string;
  reason?: string;
  /** CPU seconds and peak memory from the task's cgroup, as its last report said. */
  measured?: MeasuredUsage;
}

/** Why an attempt is being stopped before all its tasks succeeded. */
export interface StopIntent {
  kind: 'cancel' | 'requeue' | 'fail';
  reason: string;
  /** Stopped to make room for this higher-priority job: requeued, and not counted against maxAttempts. */
  preemptedBy?: string;
  /** Why a requeue happens, for metrics. */
  cause?: RequeueCause;
  exitCode?: number;
  signal?: string;
}

/** What made the scheduler requeue an attempt. */
export type RequeueCause = 'node_down' | 'lost' | 'drained' | 'preempted';

/** One placement of a job. */
export interface AttemptRecord {
  attempt: number;
  attemptId: string;
  placement: Placement;
  tasks: TaskRecord[];
  placedAtMs: number;
  startedAtMs?: number;
  endedAtMs?: number;
  stop?: StopIntent;
  outcome?: string;
}

/** A job as the scheduler keeps it. */
export interface JobRecord {
  id: string;
  tenant: string;
  spec: JobSpec;
  sched: SchedJob;
  idempotencyKey?: string;
  /** Federation: the site that routed this job here (its first start waits for the claim); why it was routed. */
  homeSite?: string;
  route?: string;
  maxAttempts: number;
  state: JobState;
  attempts: AttemptRecord[];
  /** The attempt holding resources now. */
  current?: AttemptRecord;
  cancelRequested: boolean;
  /** When the job was preempted (the storm guard counts these). */
  preemptions: number[];
  /** Jobs this one had stopped to make room for it. */
  preempting: string[];
  submittedAtMs: number;
  /** When it last entered the queue (submission or requeue): waits are measured from here. */
  queuedAtMs: number;
  finishedAtMs?: number;
  exitCode?: number;
  signal?: string;
  reason?: string;
}

/** A job as a snapshot keeps it: plain data, the attempt holding resources named by its index. */
export type SerializedJob = Omit<JobRecord, 'current'> & { currentIndex?: number };

/** Hears of placements as the table takes and gives them back. */
export interface PlacementObserver {
  placed(job: JobRecord, placement: Placement, atMs: number): void;
  released(job: JobRecord): void;
}

/** What applying an event asks the live service to do; replay drops effects and reconciles instead. */
export type Effect =
  | { kind: 'assign'; job: JobRecord; attempt: AttemptRecord }
  | { kind: 'stop-tasks'; job: JobRecord; attempt: AttemptRecord; reason: string; graceMs?: number }
  | { kind: 'stray-task'; nodeId: string; jobId: string; attemptId: string; taskIndex: number }
  | { kind: 'capacity-freed'; job: JobRecord }
  | { kind: 'job-started'; job: JobRecord; attempt: AttemptRecord; atMs: number }
  | { kind: 'job-requeued'; job: JobRecord; cause: RequeueCause }
  | { kind: 'job-ended'; job: JobRecord }
  | { kind: 'meter'; report: StatusReport & { usage: UsageSegment[] } };

const isTaskTerminal = (t: TaskRecord) => isTerminalTaskState(t.state);

/**
 * Every job and its attempts, driven only by events: submissions, placements, requeues and cancel
 * requests written by the scheduler, and status reports written by agents. Applying the job log from the
 * start rebuilds exactly this state (placements reserved in the cluster, pending jobs queued), which is how
 * the scheduler recovers after a crash. Handlers tolerate duplicates and reports about old attempts.
 */
export class JobTable {
  readonly jobs = new Map<string, JobRecord>();
  private readonly byIdempotencyKey = new Map<string, string>();
  /** Hears of every placement taken and given back, in log order, replays included (EASY's profile follows them). */
  observer: PlacementObserver | undefined;

  constructor(
    readonly cluster: ClusterState,
    readonly pending: PendingQueue,
  ) {}

  /** Forgets every job (a rebuild replays them); the cluster and the queue are reset by their owner. */
  reset(): void {
    this.jobs.clear();
    this.byIdempotencyKey.clear();
  }

  get(jobId: string): JobRecord | undefined {
    return this.jobs.get(jobId);
  }

  /**
   * Lets a job that has ended go from memory (it is in the accounting archive). Refused for a job that has
   * not ended: memory is the only place a live job's state is.
   */
  evict(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job || !TERMINAL_JOB_STATES.has(job.state)) return false;
    this.jobs.delete(jobId);
    if (job.idempotencyKey && this.byIdempotencyKey.get(`${job.tenant}\u0000${job.idempotencyKey}`) === jobId) this.byIdempotencyKey.delete(`${job.tenant}\u0000${job.idempotencyKey}`);
    return true;
  }

  /** Every job as plain data, for a snapshot (an attempt holding resources is named by its index). */
  serialize(): SerializedJob[] {
    return [...this.jobs.values()].map(({ current, ...job }) => ({ ...job, currentIndex: current ? job.attempts.indexOf(current) : undefined }));
  }

  /**
   * Puts jobs back from a snapshot: pending ones into the queue, placed ones' resources into the cluster (and
   * to the observer, as a replay would). A placement that no longer fits the cluster as registered (a node
   * left) is not reserved: its job is queued again, as the log's replay would leave it. Returns those jobs.
   */
  restore(jobs: readonly SerializedJob[]): string[] {
    const requeued: string[] = [];
    for (const { currentIndex, ...data } of jobs) {
      const job: JobRecord = { ...data, current: currentIndex === undefined ? undefined : data.attempts[currentIndex] };
      this.jobs.set(job.id, job);
      if (job.idempotencyKey) this.byIdempotencyKey.set(`${job.tenant}\u0000${job.idempotencyKey}`, job.id);
      if (job.state === 'pending') this.pending.add(job.sched);
      const attempt = job.current;
      if (!attempt) continue;
      try {
        this.cluster.reserve(attempt.placement);
      } catch {
        job.current = undefined;
        attempt.outcome = 'requeued';
        attempt.endedAtMs ??= attempt.placedAtMs;
        job.state = 'pending';
        this.pending.add(job.sched);
        requeued.push(job.id);
        continue;
      }
      this.observer?.placed(job, attempt.placement, attempt.placedAtMs);
    }
    return requeued;
  }

  /** The job a tenant submitted earlier with this Idempotency-Key. */
  byKey(tenant: string, key: string): JobRecord | undefined {
    const id = this.byIdempotencyKey.get(`${tenant}\u0000${key}`);
    return id === undefined ? undefined : this.jobs.get(id);
  }

  applySubmitted(e: JobSubmitted): Effect[] {
    if (this.jobs.has(e.jobId)) return [];
    const sched = jobFromSpec(e.spec, { id: e.jobId, tenant: e.tenant, priority: e.priority, submittedAtMs: e.submittedAtMs });
    const job: JobRecord = {
      id: e.jobId,
      tenant: e.tenant,
      spec: e.spec,
      sched,
      idempotencyKey: e.idempotencyKey,
      ...(e.homeSite === undefined ? {} : { homeSite: e.homeSite }),
      ...(e.route === undefined ? {} : { route: e.route }),
      maxAttempts: e.maxAttempts,
      state: 'pending',
      attempts: [],
      cancelRequested: false,
      preemptions: [],
      preempting: [],
      submittedAtMs: e.submittedAtMs,
      queuedAtMs: e.submittedAtMs,
    };
    this.jobs.set(job.id, job);
    if (e.idempotencyKey) this.byIdempotencyKey.set(`${e.tenant}\u0000${e.idempotencyKey}`, job.id);
    this.pending.add(sched);
    if (!e.placed) return [];
    return this.applyPlaced({ type: 'placed', jobId: e.jobId, attempt: e.placed.attempt, attemptId: e.placed.attemptId, placement: e.placed.placement, atMs: e.submittedAtMs });
  }

  /** Reserves the placement and starts the attempt. Throws if the placement does not fit (the caller decides). */
  applyPlaced(e: JobPlaced): Effect[] {
    const job = this.jobs.get(e.jobId);
    if (!job || job.state !== 'pending' || job.attempts.some((a) => a.attemptId === e.attemptId)) return [];
    this.cluster.reserve(e.placement);
    this.observer?.placed(job, e.placement, e.atMs);
    this.pending.remove(job.id);
    const attempt: AttemptRecord = {
      attempt: e.attempt,
      attemptId: e.attemptId,
      placement: e.placement,
      tasks: e.placement.tasks.map((placement) => ({ placement, state: 'assigned' })),
      placedAtMs: e.atMs,
    };
    job.attempts.push(attempt);
    job.current = attempt;
    job.state = 'placed';
    return [{ kind: 'assign', job, attempt }];
  }

  applyStatus(s: StatusReport): Effect[] {
    const job = this.jobs.get(s.jobId);
    const attempt = job?.current;
    if (!job || !attempt || attempt.attemptId !== s.attemptId) {
      // A report about an attempt that no longer holds resources: a task still running there is a stray.
      return s.state === 'running' ? [{ kind: 'stray-task', nodeId: s.nodeId, jobId: s.jobId, attemptId: s.attemptId, taskIndex: s.taskIndex }] : [];
    }
    const task = attempt.tasks[s.taskIndex];
    if (!task || task.placement.nodeId !== s.nodeId || isTaskTerminal(task)) return [];
    if (s.state === 'running') {
      if (task.state === 'running') return [];
      task.state = 'running';
      attempt.startedAtMs ??= s.atMs;
      if (job.state !== 'placed') return [];
      job.state = 'running';
      return [{ kind: 'job-started', job, attempt, atMs: s.atMs }];
    }
    task.state = s.state;
    task.exitCode = s.exitCode;
    task.signal = s.signal;
    task.reason = s.reason;
    if (s.measured) task.measured = s.measured;
    const effects: Effect[] = [];
    if (!attempt.stop && s.state !== 'succeeded') {
      // The first task that ends badly decides the attempt's fate; the rest of a gang is stopped.
      attempt.stop =
        s.state === 'lost'
          ? { kind: 'requeue', cause: 'lost', reason: `task ${s.taskIndex} lost on ${s.nodeId}: ${s.reason ?? 'agent restarted'}` }
          : { kind: 'fail', reason: s.reason ?? describeExit(s), exitCode: s.exitCode, signal: s.signal };
      effects.push({ kind: 'stop-tasks', job, attempt, reason: attempt.stop.reason });
    }
    return effects.concat(this.finishIfDone(job, attempt, s.atMs));
  }

  /** A node went down (its tasks are presumed lost) or an operator drained it: requeue the attempt. */
  applyRequeued(e: JobRequeued): Effect[] {
    const job = this.jobs.get(e.jobId);
    const attempt = job?.current;
    if (!job || !attempt || attempt.attemptId !== e.attemptId) return [];
    for (const task of attempt.tasks) {
      if (!isTaskTerminal(task) && e.lostNodeIds.includes(task.placement.nodeId)) {
        task.state = 'lost';
        task.reason = e.reason;
      }
    }
    const effects: Effect[] = [];
    if (!attempt.stop || attempt.stop.kind === 'fail') {
      attempt.stop = attempt.stop ?? { kind: 'requeue', cause: e.lostNodeIds.length > 0 ? 'node_down' : 'drained', reason: e.reason };
      effects.push({ kind: 'stop-tasks', job, attempt, reason: e.reason });
    }
    return effects.concat(this.finishIfDone(job, attempt, e.atMs));
  }

  /** A lower-priority job is stopped to make room for `byJobId`; it is queued again once its tasks have ended. */
  applyPreempted(e: JobPreempted, graceMs: number): Effect[] {
    const job = this.jobs.get(e.jobId);
    const attempt = job?.current;
    if (!job || !attempt || attempt.attemptId !== e.attemptId || attempt.stop) return [];
    attempt.stop = { kind: 'requeue', cause: 'preempted', reason: e.reason, preemptedBy: e.byJobId };
    job.preemptions.push(e.atMs);
    this.jobs.get(e.byJobId)?.preempting.push(e.jobId);
    const effects: Effect[] = [{ kind: 'stop-tasks', job, attempt, reason: e.reason, graceMs }];
    return effects.concat(this.finishIfDone(job, attempt, e.atMs));
  }

  /** Placements of the job that count against maxAttempts (preemptions do not). */
  countedAttempts(job: JobRecord): number {
    return job.attempts.filter((a) => !a.stop?.preemptedBy).length;
  }

  applyCancelRequested(e: JobCancelRequested): Effect[] {
    const job = this.jobs.get(e.jobId);
    if (!job || TERMINAL_JOB_STATES.has(job.state)) return [];
    job.cancelRequested = true;
    if (job.state === 'pending') {
      this.pending.remove(job.id);
      this.end(job, 'cancelled', e.atMs, { reason: e.reason });
      return [{ kind: 'job-ended', job }];
    }
    const attempt = job.current!;
    const effects: Effect[] = [];
    if (!attempt.stop || attempt.stop.kind === 'requeue') {
      attempt.stop = { kind: 'cancel', reason: e.reason };
      effects.push({ kind: 'stop-tasks', job, attempt, reason: e.reason });
    }
    job.state = 'cancelling';
    return effects.concat(this.finishIfDone(job, attempt, e.atMs));
  }

  /** Tasks of an attempt that may still be running. */
  liveTasks(attempt: AttemptRecord): TaskRecord[] {
    return attempt.tasks.filter((t) => !isTaskTerminal(t));
  }

  /** When every task of the attempt has ended: give back its resources and decide what the job becomes. */
  private finishIfDone(job: JobRecord, attempt: AttemptRecord, atMs: number): Effect[] {
    if (attempt.tasks.some((t) => !isTaskTerminal(t))) return [];
    this.cluster.release(job.id);
    this.observer?.released(job);
    job.current = undefined;
    attempt.endedAtMs = atMs;
    const effects: Effect[] = [{ kind: 'capacity-freed', job }];
    const stop = attempt.stop;
    if (!stop || attempt.tasks.every((t) => t.state === 'succeeded')) {
      // Every task completed its work, even if a cancel was on its way: the job succeeded.
      attempt.outcome = 'succeeded';
      this.end(job, 'succeeded', atMs, { exitCode: 0 });
    } else if (stop.kind === 'cancel' || job.cancelRequested) {
      attempt.outcome = 'cancelled';
      this.end(job, 'cancelled', atMs, { reason: stop.reason });
    } else if (stop.kind === 'fail') {
      attempt.outcome = 'failed';
      this.end(job, 'failed', atMs, { reason: stop.reason, exitCode: stop.exitCode, signal: stop.signal });
    } else if (!stop.preemptedBy && this.countedAttempts(job) >= job.maxAttempts) {
      attempt.outcome = 'requeued';
      this.end(job, 'failed', atMs, { reason: `gave up after ${this.countedAttempts(job)} attempts; last: ${stop.reason}` });
    } else {
      attempt.outcome = stop.preemptedBy ? 'preempted' : 'requeued';
      job.state = 'pending';
      job.reason = stop.reason;
      job.queuedAtMs = atMs;
      this.pending.add(job.sched);
      effects.push({ kind: 'job-requeued', job, cause: stop.cause ?? 'lost' });
      return effects;
    }
    effects.push({ kind: 'job-ended', job });
    return effects;
  }

  private end(job: JobRecord, state: JobState, atMs: number, outcome: { reason?: string; exitCode?: number; signal?: string }): void {
    job.state = state;
    job.finishedAtMs = atMs;
    job.reason = outcome.reason;
    job.exitCode = outcome.exitCode;
    job.signal = outcome.signal;
  }
}

function describeExit(s: StatusReport): string {
  if (s.signal) return `killed by ${s.signal}`;
  if (s.exitCode !== undefined) return `exited with code ${s.exitCode}`;
  return s.state;
}
