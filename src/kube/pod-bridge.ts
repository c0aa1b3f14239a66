import { isTerminalTaskState, taskKey, type Assignment, type CancelOrder, type LogReply, type LogRequest, type TaskState } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { errorMessage, KubeApiError, type KubeApi } from './kube-api';
import { isTerminalPhase, podKey, type KubeNamespace, type KubePod } from './kube-types';
import { kubeNodeNameOf } from './node-mapping';
import { groupPods, isOurPod, jobOfUnit, type PodMappingKeys, type PodUnit } from './pod-mapping';
import { SchedulerApiError, type SchedulerClient } from '../client';
import type { TaskReports } from '../node-link/node-link';

/** A job the bridge submitted, and its pods by task index. Kept in memory only: rebuilt after a restart. */
interface TrackedJob {
  jobId: string;
  tenant: string;
  pods: { namespace: string; name: string; uid: string }[];
  /** The attempt whose pods are bound, and each task's node. */
  attemptId?: string;
  nodeIds?: string[];
  /** The last state reported for each task of the bound attempt. */
  reported: (TaskState | undefined)[];
  /** Attempts being bound or bound, so repeated assignments (one per node of a gang) bind once. */
  attempts: Map<string, Promise<void>>;
  /** Pods the bridge deleted itself: their disappearance is not a user's cancellation. */
  deletedByBridge: Set<string>;
  cancelRequested: boolean;
  /** Nothing more to do but wait for its pods to disappear. */
  isDone: boolean;
}

/** Submissions refused by the scheduler are tried again after this long (a namespace label may have been fixed). */
const RETRY_REFUSED_MS = 30_000;
/** Tries of a bind that fails transiently (5xx, 409, 429, no answer). */
const BIND_TRIES = 4;

export interface PodBridgeOptions {
  kube: KubeApi;
  scheduler: SchedulerClient;
  /** Task status reports, sent as agents send them (the bridge's NodeLink). */
  reporter: TaskReports;
  keys: PodMappingKeys;
  log: Logger;
}

/**
 * Pods of our scheduler name become jobs (one per pod, one per complete gang), submitted as their
 * namespace's tenant; assignments bind them (a gang all or none); pod phases become task reports; while a
 * job waits, its pods show why (PodScheduled=False and a FailedScheduling event when the reason changes).
 */
export class PodBridge {
  private readonly jobs = new Map<string, TrackedJob>();
  private readonly jobByPodUid = new Map<string, TrackedJob>();
  private readonly submitting = new Set<string>();
  private readonly refused = new Map<string, number>();
  /** The condition last shown on each pod (uid → reason + message), so events are not repeated. */
  private readonly shown = new Map<string, string>();
  private pods = new Map<string, KubePod>();
  private hasSynced = false;

  constructor(private readonly opts: PodBridgeOptions) {}

  /** Brings jobs in line with the pods in the informer cache. */
  async reconcile(allPods: KubePod[], namespaces: Map<string, KubeNamespace>): Promise<void> {
    this.pods = new Map(allPods.map((p) => [p.metadata.uid, p]));
    const ours = allPods.filter((p) => isOurPod(p, this.opts.keys.schedulerName));
    const { units, waiting } = groupPods(ours);
    const work: Promise<void>[] = [];
    for (const unit of units) {
      if (unit.pods.some((p) => this.jobByPodUid.has(p.metadata.uid)) || this.submitting.has(unit.key)) continue;
      if ((this.refused.get(unit.key) ?? 0) > Date.now()) continue;
      work.push(this.submit(unit, namespaces.get(unit.pods[0].metadata.namespace)));
    }
    for (const w of waiting) for (const pod of w.pods) if (!this.jobByPodUid.has(pod.metadata.uid)) work.push(this.showPending(pod, w.reason, w.message));
    for (const job of this.jobs.values()) work.push(this.followPods(job));
    await Promise.all(work);
    this.hasSynced = true;
  }

  /**
   * The tail of a task's output: its pod's log, read from the API server (the first container's, the one
   * that runs the task). Only the attempt whose pods are bound has output here; once its pods are deleted
   * the output is gone with them.
   */
  async readLog({ jobId, attemptId, taskIndex, maxBytes }: LogRequest): Promise<LogReply> {
    const job = this.jobs.get(jobId);
    const ref = job?.attemptId === attemptId ? job.pods[taskIndex] : undefined;
    const pod = ref && this.pods.get(ref.uid);
    if (!ref || !pod) return { ok: false, message: 'the Kubernetes bridge has no pod for this task (not bound here, or deleted)' };
    const container = pod.spec.containers[0]?.name;
    if (!container) return { ok: false, message: `pod ${ref.namespace}/${ref.name} has no container` };
    // Every line holds at least its newline: maxBytes + 1 lines hold more than maxBytes when there are more.
    const text = await this.opts.kube.podLog(ref.namespace, ref.name, container, maxBytes + 1);
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length <= maxBytes) return { ok: true, text, truncated: false };
    return { ok: true, text: bytes.subarray(bytes.length - maxBytes).toString('utf8'), truncated: true };
  }

  /** Task keys bound on a node and not finished, for its heartbeat. */
  runningOn(nodeId: string): string[] {
    const keys: string[] = [];
    for (const { nodeIds, attemptId, reported } of this.jobs.values()) {
      if (!attemptId) continue;
      nodeIds?.forEach((n, i) => {
        if (n === nodeId && !isTerminalTaskState(reported[i])) keys.push(taskKey({ attemptId, taskIndex: i }));
      });
    }
    return keys;
  }

  private async submit(unit: PodUnit, namespace: KubeNamespace | undefined): Promise<void> {
    const mapped = jobOfUnit(unit, namespace, this.opts.keys);
    if ('error' in mapped) {
      this.refused.set(unit.key, Date.now() + RETRY_REFUSED_MS);
      await Promise.all(unit.pods.map((p) => this.showPending(p, 'Unschedulable', mapped.error)));
      return;
    }
    this.submitting.add(unit.key);
    try {
      const res = await this.opts.scheduler.submit(mapped.spec, { actAs: mapped.tenant, idempotencyKey: unit.key });
      const job: TrackedJob = {
        jobId: res.id,
        tenant: mapped.tenant,
        pods: unit.pods.map((p) => ({ namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid })),
        reported: [],
        attempts: new Map(),
        deletedByBridge: new Set(),
        cancelRequested: false,
        isDone: false,
      };
      if (res.replayed && unit.pods.some((p) => p.spec.nodeName)) await this.adopt(job);
      this.jobs.set(job.jobId, job);
      for (const p of job.pods) this.jobByPodUid.set(p.uid, job);
      this.opts.log.info({ jobId: job.jobId, pods: job.pods.map((p) => `${p.namespace}/${p.name}`), tenant: job.tenant, replayed: res.replayed }, 'pods submitted as a job');
    } catch (err) {
      const message = err instanceof SchedulerApiError && err.statusCode >= 400 && err.statusCode < 500 ? `the scheduler refused the job: ${err.message}` : `the scheduler is unavailable: ${errorMessage(err)}`;
      this.refused.set(unit.key, Date.now() + (err instanceof SchedulerApiError && err.statusCode >= 400 && err.statusCode < 500 ? RETRY_REFUSED_MS : 2_000));
      await Promise.all(unit.pods.map((p) => this.showPending(p, 'Unschedulable', message)));
    } finally {
      this.submitting.delete(unit.key);
    }
  }

  /** After a restart: a bound pod's job is found by its idempotency key; its placement says which attempt is bound. */
  private async adopt(job: TrackedJob): Promise<void> {
    const view = await this.opts.scheduler.job(job.jobId, { actAs: job.tenant });
    if (!view.attemptId || !view.placement) return;
    job.attemptId = view.attemptId;
    job.nodeIds = view.placement.map((t) => t.nodeId);
    job.reported = view.placement.map((t) => (t.state === 'running' || isTerminalTaskState(t.state) ? (t.state as TaskState) : undefined));
    job.attempts.set(view.attemptId, Promise.resolve());
  }

  /** Follows a job's pods: phases become reports, a pod deleted by someone else cancels the job. */
  private async followPods(job: TrackedJob): Promise<void> {
    const present = job.pods.map((ref) => this.pods.get(ref.uid));
    if (present.every((p) => p === undefined)) {
      // Every pod is gone: the job is forgotten once the scheduler has been told.
      if (job.isDone || job.deletedByBridge.size === job.pods.length) return this.forget(job);
    }
    for (const [i, ref] of job.pods.entries()) {
      const pod = present[i];
      if (!pod) {
        if (!job.deletedByBridge.has(ref.uid) && !isTerminalTaskState(job.reported[i])) await this.cancelForDeletedPod(job, i);
        continue;
      }
      if (!job.nodeIds || !job.attemptId || isTerminalTaskState(job.reported[i])) continue;
      const phase = pod.status.phase;
      if ((phase === 'Running' || isTerminalPhase(phase)) && job.reported[i] === undefined) {
        job.reported[i] = 'running';
        await this.opts.reporter.report(job.nodeIds[i], job.jobId, job.attemptId, i, { state: 'running' });
      }
      if (isTerminalPhase(phase)) {
        const exit = exitOf(pod);
        job.reported[i] = phase === 'Succeeded' ? 'succeeded' : 'failed';
        await this.opts.reporter.report(job.nodeIds[i], job.jobId, job.attemptId, i, { state: job.reported[i]!, ...exit });
      }
    }
  }

  /** A user deleted a pod of an unfinished job: the job is cancelled (its other pods are deleted by the cancel). */
  private async cancelForDeletedPod(job: TrackedJob, taskIndex: number): Promise<void> {
    if (job.cancelRequested) return;
    job.cancelRequested = true;
    const ref = job.pods[taskIndex];
    try {
      await this.opts.scheduler.cancel(job.jobId, { actAs: job.tenant });
      this.opts.log.info({ jobId: job.jobId, pod: `${ref.namespace}/${ref.name}` }, 'pod deleted; job cancelled');
    } catch (err) {
      this.opts.log.info({ jobId: job.jobId, err: errorMessage(err) }, 'pod deleted; job not cancellable (finished already?)');
      // The task cannot end any other way now: the scheduler learns it is lost.
      if (job.nodeIds && job.attemptId && !isTerminalTaskState(job.reported[taskIndex])) {
        job.reported[taskIndex] = 'lost';
        await this.opts.reporter.report(job.nodeIds[taskIndex], job.jobId, job.attemptId, taskIndex, { state: 'lost', reason: `pod ${ref.namespace}/${ref.name} disappeared` });
      }
    }
  }

  private forget(job: TrackedJob): void {
    this.jobs.delete(job.jobId);
    for (const p of job.pods) {
      this.jobByPodUid.delete(p.uid);
      this.shown.delete(p.uid);
    }
  }

  /** Looks at waiting jobs: the pending reason goes to their pods; a job cancelled or failed while pending ends its pods. */
  async pollPending(): Promise<void> {
    const waiting = [...this.jobs.values()].filter((j) => !j.isDone && !j.nodeIds && j.attempts.size === 0);
    await Promise.all(
      waiting.map(async (job) => {
        let view;
        try {
          view = await this.opts.scheduler.job(job.jobId, { actAs: job.tenant });
        } catch (err) {
          this.opts.log.debug({ jobId: job.jobId, err: errorMessage(err) }, 'job not readable');
          return;
        }
        if (view.state === 'pending') {
          const reason = view.pendingReason ?? 'waiting in the queue';
          await Promise.all(this.currentPods(job).map((p) => this.showPending(p, 'Unschedulable', reason)));
        } else if (view.state === 'cancelled') {
          job.isDone = true;
          await this.deletePods(job, 'job cancelled while pending');
        } else if (view.state === 'failed') {
          job.isDone = true;
          await Promise.all(this.currentPods(job).map((p) => this.showPending(p, 'Unschedulable', `job ${job.jobId} failed: ${view.reason ?? 'no reason given'}`)));
        }
      }),
    );
  }

  // ---- Work from the scheduler: assignments bind, cancels delete --------------------------------------

  /** Binds an assignment's pods; 'retry' when the bridge does not know the job yet (just restarted). */
  async onAssign(a: Assignment): Promise<'done' | 'retry'> {
    const job = this.jobs.get(a.jobId);
    if (!job) {
      if (!this.hasSynced || this.submitting.size > 0) return 'retry';
      this.opts.log.warn({ jobId: a.jobId, attemptId: a.attemptId }, 'assignment for a job without pods; reported failed');
      await Promise.all(a.tasks.map((t) => this.opts.reporter.report(a.nodeId, a.jobId, a.attemptId, t.taskIndex, { state: 'failed', reason: 'the Kubernetes bridge has no pods for this job (deleted?)' })));
      return 'done';
    }
    // A gang on several nodes arrives as one assignment per node; the first binds every pod (all or none).
    let binding = job.attempts.get(a.attemptId);
    if (!binding) {
      binding = this.bindAttempt(job, a);
      job.attempts.set(a.attemptId, binding);
    }
    await binding;
    return 'done';
  }

  private async bindAttempt(job: TrackedJob, a: Assignment): Promise<void> {
    const hosts = a.hosts.length === job.pods.length ? a.hosts : job.pods.map(() => a.nodeId);
    const results = await Promise.all(job.pods.map((ref, i) => this.bindOne(ref, kubeNodeNameOf(hosts[i])).then(() => undefined, (err: unknown) => err)));
    const failures = results.map((r, i) => (r === undefined ? undefined : `${job.pods[i].name}: ${errorMessage(r)}`)).filter((f) => f !== undefined);
    if (failures.length === 0) {
      job.attemptId = a.attemptId;
      job.nodeIds = hosts;
      job.reported = job.pods.map(() => undefined);
      for (const [i, ref] of job.pods.entries()) {
        this.shown.delete(ref.uid);
        const pod = this.pods.get(ref.uid);
        if (pod) void this.opts.kube.podEvent(pod, 'Normal', 'Scheduled', `Successfully assigned ${ref.namespace}/${ref.name} to ${kubeNodeNameOf(hosts[i])} (job ${job.jobId})`).catch(() => undefined);
      }
      this.opts.log.info({ jobId: job.jobId, attemptId: a.attemptId, nodes: hosts }, 'pods bound');
      return;
    }
    // All or none: pods bound in this attempt are deleted (their controllers recreate them as a new job).
    const reason = `binding failed: ${failures.join('; ')}`;
    this.opts.log.warn({ jobId: job.jobId, attemptId: a.attemptId, reason }, 'bind failed; attempt reported failed');
    job.isDone = true;
    await Promise.all(
      results.map(async (r, i) => {
        const ref = job.pods[i];
        if (r === undefined) {
          job.deletedByBridge.add(ref.uid);
          await this.opts.kube.deletePod(ref.namespace, ref.name, ref.uid).catch((err) => this.opts.log.error({ pod: `${ref.namespace}/${ref.name}`, err: errorMessage(err) }, 'could not delete a pod of a failed gang'));
        } else {
          const pod = this.pods.get(ref.uid);
          if (pod) await this.showPending(pod, 'Unschedulable', reason);
        }
      }),
    );
    await Promise.all(job.pods.map((_, i) => this.opts.reporter.report(hosts[i], job.jobId, a.attemptId, i, { state: 'failed', reason })));
  }

  /** Binds one pod, retrying transient errors; a pod already bound to that node (a retried bind) is fine. */
  private async bindOne(ref: { namespace: string; name: string; uid: string }, nodeName: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const pod = this.pods.get(ref.uid);
      if (pod?.spec.nodeName === nodeName) return;
      if (pod?.spec.nodeName) throw new Error(`already bound to ${pod.spec.nodeName}; a bound pod cannot move`);
      try {
        await this.opts.kube.bind(ref.namespace, ref.name, nodeName);
        return;
      } catch (err) {
        if (!(err instanceof KubeApiError) || !err.isTransient || attempt >= BIND_TRIES) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  /**
   * Deletes the pods of cancelled tasks and reports them cancelled. Only pods bound in that attempt are
   * deleted: the unbound pods of an attempt that failed to bind stay, showing why.
   */
  async onCancel(c: CancelOrder): Promise<void> {
    const job = this.jobs.get(c.jobId);
    await job?.attempts.get(c.attemptId)?.catch(() => undefined);
    const isBound = job !== undefined && job.attemptId === c.attemptId;
    await Promise.all(
      c.taskIndexes.map(async (i) => {
        const ref = isBound ? job.pods[i] : undefined;
        if (isBound && ref) {
          job.deletedByBridge.add(ref.uid);
          await this.opts.kube.deletePod(ref.namespace, ref.name, ref.uid);
          job.reported[i] = 'cancelled';
        }
        await this.opts.reporter.report(c.nodeId, c.jobId, c.attemptId, i, { state: 'cancelled', reason: ref ? `${c.reason}; pod ${ref.namespace}/${ref.name} deleted` : c.reason });
      }),
    );
    if (job && job.pods.every((p) => job.deletedByBridge.has(p.uid))) job.isDone = true;
  }

  private async deletePods(job: TrackedJob, why: string): Promise<void> {
    for (const ref of job.pods) {
      job.deletedByBridge.add(ref.uid);
      await this.opts.kube.deletePod(ref.namespace, ref.name, ref.uid).catch((err) => this.opts.log.warn({ pod: `${ref.namespace}/${ref.name}`, err: errorMessage(err), why }, 'pod not deleted'));
    }
  }

  private currentPods(job: TrackedJob): KubePod[] {
    return job.pods.map((p) => this.pods.get(p.uid)).filter((p): p is KubePod => p !== undefined && !p.spec.nodeName);
  }

  /**
   * Shows why a pod waits, as kube-scheduler does: PodScheduled=False with the reason, and a
   * FailedScheduling event — only when the reason changed since it was last shown.
   */
  private async showPending(pod: KubePod, reason: string, message: string): Promise<void> {
    if (pod.spec.nodeName) return; // scheduled already: nothing pending to show
    const text = `${reason}\n${message}`;
    if (this.shown.get(pod.metadata.uid) === text) return;
    // Shown before a restart of the bridge: the pod still says it, so no second event.
    const current = pod.status.conditions?.find((c) => c.type === 'PodScheduled');
    if (current?.status === 'False' && current.reason === reason && current.message === message) {
      this.shown.set(pod.metadata.uid, text);
      return;
    }
    this.shown.set(pod.metadata.uid, text);
    try {
      await this.opts.kube.setPodScheduledCondition(pod, 'False', reason, message);
      await this.opts.kube.podEvent(pod, 'Warning', 'FailedScheduling', message);
    } catch (err) {
      this.shown.delete(pod.metadata.uid);
      this.opts.log.warn({ pod: podKey(pod), err: errorMessage(err) }, 'pending reason not shown on the pod');
    }
  }
}

/** Exit code and reason of an ended pod: the first container that failed, else the first that ended. */
function exitOf(pod: KubePod): { exitCode?: number; reason?: string } {
  const ended = (pod.status.containerStatuses ?? []).map((c) => ({ name: c.name, t: c.state?.terminated })).filter((c) => c.t);
  const pick = ended.find((c) => c.t!.exitCode !== 0) ?? ended[0];
  const reason = pick?.t?.reason ? `container ${pick.name}: ${pick.t.reason}` : (pod.status.reason ?? undefined);
  return { exitCode: pick?.t?.exitCode, ...(reason ? { reason } : {}) };
}
