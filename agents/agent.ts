import { join } from 'node:path';
import { taskKey, UNHEALTHY_TAINT, type AgentWork, type Assignment, type CancelOrder, type Enforcement, type LogReply, type LogRequest, type TaskPlacement, type UsageSegment, type NodeSpec } from '../src/protocol';
import { NodeLink, type FenceSettings, type HeartbeatBody, type WorkOutcome } from '../src/node-link/node-link';
import type { NatsAuthConfig } from '../src/store/nats-options';
import type { Logger } from '../src/telemetry/logger';
import { TaskMeter } from '../src/metering/attribution';
import { runLimited } from '../src/concurrency';
import { Journal } from './journal';
import { TaskLogs, taskLogPath, type TaskLogLimits } from './task-logs';
import type { ReportedStatus, TaskExit, TaskHandle, TaskRunner } from './runners/types';
import type { NodeTelemetry } from './telemetry';

/** A node this agent serves. */
export interface AgentNode {
  spec: NodeSpec;
  telemetry: NodeTelemetry;
}

interface RunningTask {
  key: string;
  nodeId: string;
  jobId: string;
  attemptId: string;
  taskIndex: number;
  placement: TaskPlacement;
  handle: TaskHandle;
  logPath: string;
  /** Energy and resources used so far, from the node's power samples (sent with the last report). */
  meter: TaskMeter;
}

export interface AgentOptions {
  agentId: string;
  natsUrl: string;
  /** NATS credentials and TLS (the agent's own nkey user when the server enforces permissions). */
  natsAuth?: NatsAuthConfig;
  nodes: AgentNode[];
  runner: TaskRunner;
  stateDir: string;
  /** How many and how much task output the state folder keeps (defaults: 10,000 logs, 10 GiB, 256 MiB a running task). */
  taskLogs?: TaskLogLimits;
  heartbeatIntervalMs: number;
  log: Logger;
  now?: () => number;
  /** What the agent enforces on its nodes, sent with their registrations (shown by GET /v1/nodes/:id). */
  enforcement?: Enforcement;
  /**
   * Fencing: stop the tasks after `afterMs` without NATS (SIGKILL `graceMs` after SIGTERM). When absent, the
   * agent fences at half the scheduler's down threshold, once a registration reply has told it.
   */
  fence?: FenceSettings;
  /**
   * Test only: starts a repeated assignment again instead of dropping it (the journal's duplicate guard off),
   * so a test can show that the chaos checker sees one attempt started twice. Never set in production.
   */
  unsafeDisableDuplicateGuard?: boolean;
}

/**
 * A node agent: registers its node(s), sends heartbeats, runs what is assigned to them and reports how
 * each task ended. One agent serves one machine, or many virtual nodes in one process (`--simulate`). The
 * wire protocol (registration, heartbeats, the work consumer with its term fence and acks, status reports,
 * log replies, the ping fence) is NodeLink's, shared with the Kubernetes bridge; the agent runs the tasks,
 * journals them, meters them and says what its nodes' heartbeats carry.
 */
export class Agent {
  private readonly link: NodeLink;
  private readonly journal: Journal;
  /** Task logs on disk (real tasks; simulated ones keep theirs in memory). */
  private readonly logs: TaskLogs | undefined;
  private readonly running = new Map<string, RunningTask>();
  /** The running tasks of each node (heartbeats list them). */
  private readonly runningOn = new Map<string, Map<string, RunningTask>>();
  private readonly nodes = new Map<string, AgentNode>();
  private stopped = false;
  /** Tasks stopped by the fence: reported lost (reason `fenced`) once NATS is back. */
  private readonly fencedKeys = new Set<string>();
  /** Tasks being stopped because the agent stops, and what to call when each has exited. */
  private readonly exitWaiters = new Map<string, () => void>();
  private journalClosed = false;
  /** Why the runner's test task failed at start (its nodes register tainted), if it did. */
  private unhealthy: string | undefined;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: AgentOptions) {
    for (const node of opts.nodes) this.nodes.set(node.spec.id, node);
    this.journal = new Journal(join(opts.stateDir, 'journal'));
    this.logs = opts.runner.kind === 'process' ? new TaskLogs(join(opts.stateDir, 'logs'), opts.taskLogs) : undefined;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.link = new NodeLink({
      agentId: opts.agentId,
      natsUrl: opts.natsUrl,
      natsAuth: opts.natsAuth,
      connectionName: `qy-agent-${opts.agentId}`,
      log: opts.log,
      now: this.now,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      heartbeat: (nodeId, atMs) => this.heartbeatOf(nodeId, atMs),
      onWork: (work) => this.onWork(work),
      onLogRequest: (_nodeId, request) => this.readLog(request),
      onReregisterDue: () => void this.registerAll(),
      fence: opts.fence,
      onFence: (silentMs, graceMs) => this.fenceTasks(silentMs, graceMs),
    });
  }

  get nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  async start(): Promise<void> {
    this.unhealthy = await this.opts.runner.prepare?.();
    if (this.unhealthy) this.log.error({ problem: this.unhealthy }, `a test task failed at start: this node cannot run tasks as configured; its nodes register tainted ${UNHEALTHY_TAINT.key}:NoSchedule until the agent starts again`);
    await this.link.connect();
    this.link.serve(this.nodeIds);
    this.recoverFromJournal();
    const removed = this.logs?.open() ?? 0;
    if (removed > 0) this.log.info({ removed, dir: this.logs!.dir }, 'removed the oldest task logs past QY_TASK_LOGS_KEEP or QY_TASK_LOGS_MAX_BYTES');
    await this.registerAll();
    await this.link.run();
  }

  /** Stops serving. Running tasks are stopped and reported lost, so the scheduler runs them elsewhere. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.link.stopIntake();
    const stopping = [...this.running.values()].map(
      (task) =>
        new Promise<void>((resolve) => {
          this.exitWaiters.set(task.key, resolve);
          task.handle.cancel(2_000, 'agent stopping');
        }),
    );
    await Promise.race([Promise.all(stopping), new Promise((r) => setTimeout(r, 5_000))]);
    await this.link.close();
    this.journalClosed = true;
    this.journal.close();
    await this.opts.runner.close?.().catch(() => undefined);
  }

  /** Tasks started before a restart: kill what may be left of them and report them lost; re-report exits. */
  private recoverFromJournal(): void {
    const unreported = this.journal.unreported();
    for (const task of this.journal.unfinished()) {
      if (task.pid !== undefined) {
        try {
          process.kill(-task.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      const lost: ReportedStatus = { state: 'lost', reason: 'agent restarted while the task ran' };
      this.journal.exited(task.key, lost);
      void this.report(task, lost, task.key);
    }
    // With what the task used, journaled with its exit: an exit reported again is still metered.
    for (const { task, exit, usage } of unreported) void this.report(task, exit, task.key, usage);
    this.journal.compact();
  }

  /** Registers every node (32 at a time), each until the scheduler accepts it. */
  private async registerAll(): Promise<void> {
    const nodes = [...this.nodes.values()];
    await runLimited(32, nodes.length, async (i) => {
      if (!this.stopped) await this.link.registerUntilAccepted(this.registered(nodes[i].spec));
    });
  }

  /**
   * A node's spec as registered: with what the agent enforces on it (shown by GET /v1/nodes/:id), and tainted
   * when the test task at start failed, with why.
   */
  private registered(spec: NodeSpec): NodeSpec {
    const enforcement = this.opts.enforcement && { ...this.opts.enforcement, ...(this.unhealthy ? { testTask: this.unhealthy.slice(0, 500) } : {}) };
    const taints = this.unhealthy ? [...spec.taints.filter((t) => t.key !== UNHEALTHY_TAINT.key), { ...UNHEALTHY_TAINT }] : spec.taints;
    return { ...spec, taints, ...(enforcement ? { enforcement } : {}) };
  }

  /** A node's heartbeat: its telemetry with its running tasks, whose meters take the same power sample. */
  private async heartbeatOf(nodeId: string, atMs: number): Promise<HeartbeatBody> {
    const tasks = [...(this.runningOn.get(nodeId)?.values() ?? [])];
    // A task printing without end would fill the node's disk: its earlier output goes past the cap.
    for (const t of tasks) if (this.logs?.capRunning(t.logPath)) this.log.warn({ jobId: t.jobId, attemptId: t.attemptId, taskIndex: t.taskIndex, maxBytes: this.logs.maxTaskBytes }, "a task's output passed QY_TASK_LOG_MAX_BYTES; its earlier output was dropped");
    const sample = await this.nodes.get(nodeId)!.telemetry.sample(atMs, tasks.map((t) => t.placement));
    for (const t of tasks) t.meter.sample(atMs, sample.powerWatts, sample.greenShare);
    return { ...sample, running: tasks.map((t) => t.key) };
  }

  // ---- Work: assignments and cancels (behind NodeLink's term fence) ------------------------------------

  private async onWork(work: AgentWork): Promise<WorkOutcome> {
    if (!this.nodes.has(work.nodeId)) {
      this.log.error({ jobId: work.jobId, nodeId: work.nodeId }, 'work for a node this agent does not serve; dropped');
      return 'drop';
    }
    // An assignment is acknowledged once the agent's side is durable: started tasks journaled, their running reports stored.
    if (work.type === 'assign') await this.onAssign(work);
    else this.onCancel(work);
    return 'ack';
  }

  private onAssign(a: Assignment): Promise<unknown> {
    const reports: Promise<void>[] = [];
    // Stale work (NodeLink.isStale: queued past half the down threshold while the agent was cut off) may
    // belong to an attempt since run elsewhere: it is reported lost instead of started; the scheduler runs
    // it again if it was still current, and ignores the report otherwise.
    const stale = this.link.isStale(a.atMs);
    const ageMs = this.now() - a.atMs;
    for (const task of a.tasks) {
      const key = taskKey({ attemptId: a.attemptId, taskIndex: task.taskIndex });
      const ref = { nodeId: a.nodeId, jobId: a.jobId, attemptId: a.attemptId, taskIndex: task.taskIndex };
      if (this.journal.hasSeen(key) && !this.opts.unsafeDisableDuplicateGuard) continue; // a duplicate, or cancelled before it came
      if (stale) {
        this.journal.markSeen(key);
        this.log.warn({ jobId: a.jobId, attemptId: a.attemptId, ageMs }, 'assignment too old to start safely; reported lost');
        reports.push(this.report(ref, { state: 'lost', reason: `assignment arrived ${ageMs} ms after it was sent: not started, its node may have been declared down meanwhile` }, undefined));
        continue;
      }
      this.journal.started({ key, ...ref });
      const logPath = this.logs ? this.logs.pathFor(a.attemptId, task.taskIndex) : this.logPathOf(a.attemptId, task.taskIndex);
      const node = this.nodes.get(a.nodeId)!.spec;
      const meter = new TaskMeter({ placement: task, alloc: node.allocatable ?? node.capacity, gpuModel: node.gpuModel, startMs: this.now() });
      const handle = this.opts.runner.start({ key, assignment: a, task, nodeId: a.nodeId, logPath, onPid: (pid) => this.journal.setPid(key, pid), onExit: (exit) => this.onExit(key, exit) });
      this.addRunning({ key, ...ref, placement: task, handle, logPath, meter });
      reports.push(this.report(ref, { state: 'running' }, undefined));
    }
    return Promise.all(reports);
  }

  private onCancel(c: CancelOrder): void {
    for (const taskIndex of c.taskIndexes) {
      const key = taskKey({ attemptId: c.attemptId, taskIndex });
      const task = this.running.get(key);
      if (task) task.handle.cancel(c.graceMs, c.reason);
      else if (!this.journal.hasSeen(key)) {
        // Never started here: it never will, and the scheduler learns it is over.
        this.journal.markSeen(key);
        void this.report({ nodeId: c.nodeId, jobId: c.jobId, attemptId: c.attemptId, taskIndex }, { state: 'cancelled', reason: `${c.reason} (before it started)` }, undefined);
      }
    }
  }

  private addRunning(task: RunningTask): void {
    this.running.set(task.key, task);
    const onNode = this.runningOn.get(task.nodeId) ?? new Map<string, RunningTask>();
    onNode.set(task.key, task);
    this.runningOn.set(task.nodeId, onNode);
  }

  private onExit(key: string, runnerExit: TaskExit): void {
    const task = this.running.get(key);
    if (!task) return;
    this.running.delete(key);
    this.runningOn.get(task.nodeId)?.delete(key);
    this.logs?.taskEnded(task.logPath);
    const waiter = this.exitWaiters.get(key);
    // When the agent is stopping, the task did not end on its own: it is lost for the scheduler, which reruns it.
    // A task a fence stopped is lost too: the scheduler runs it again (once its node is down, or now).
    const fenced = this.fencedKeys.delete(key);
    const status: ReportedStatus = waiter ? { state: 'lost', reason: 'agent stopped' } : fenced ? { state: 'lost', reason: 'fenced', measured: runnerExit.measured } : runnerExit;
    // The exit is journaled with its usage, so a restart before the report is stored reports both again
    // (a restart before this line reports the task lost: the scheduler runs it again and meters that run).
    void this.finalUsage(task)
      .then((usage) => {
        if (!this.journalClosed) this.journal.exited(key, status, usage);
        return this.report(task, status, key, usage);
      })
      .finally(() => waiter?.());
  }

  /**
   * What an ended task used: its node is sampled once more at the end (a task shorter than the heartbeat
   * interval would otherwise have no power sample at all), with the task still counted on it.
   */
  private async finalUsage(task: RunningTask): Promise<UsageSegment[]> {
    const endMs = this.now();
    const onNode = [...(this.runningOn.get(task.nodeId)?.values() ?? [])].map((t) => t.placement);
    try {
      const sample = await this.nodes.get(task.nodeId)!.telemetry.sample(endMs, [...onNode, task.placement]);
      task.meter.sample(endMs, sample.powerWatts, sample.greenShare);
    } catch (err) {
      this.log.warn({ nodeId: task.nodeId, err: (err as Error).message }, 'no power sample at the end of a task; metered from earlier samples');
    }
    return task.meter.finish(endMs);
  }

  /** Sends a status report; with `journalKey`, the journal records once it is stored. */
  private report(task: TaskRef, status: ReportedStatus, journalKey: string | undefined, usage?: UsageSegment[]): Promise<void> {
    return this.link.report(task.nodeId, task.jobId, task.attemptId, task.taskIndex, { ...status, usage }).then(
      () => {
        if (journalKey && !this.journalClosed) this.journal.reported(journalKey);
      },
      (err: Error) => this.log.warn({ err: err.message, jobId: task.jobId }, 'status report abandoned'),
    );
  }

  /** The fence fired (no confirmed contact with NATS): every task is stopped, and reported lost once NATS is back. */
  private fenceTasks(silentMs: number, graceMs: number): void {
    this.log.error({ silentMs, tasks: this.running.size }, 'fenced: no contact with NATS; stopping every task');
    for (const task of this.running.values()) {
      this.fencedKeys.add(task.key);
      task.handle.cancel(graceMs, 'fenced');
    }
  }

  private logPathOf(attemptId: string, taskIndex: number): string {
    return taskLogPath(join(this.opts.stateDir, 'logs'), attemptId, taskIndex);
  }

  private async readLog({ attemptId, taskIndex, maxBytes }: LogRequest): Promise<LogReply> {
    const logPath = this.running.get(taskKey({ attemptId, taskIndex }))?.logPath ?? this.logPathOf(attemptId, taskIndex);
    const read = () => this.opts.runner.readLog(logPath, maxBytes);
    const tail = await (this.logs ? this.logs.read(logPath, read) : read());
    return tail ? { ok: true, ...tail } : { ok: false, message: 'the agent has no output for this task (it did not start here, or its log was removed)' };
  }
}

/** The task a report is about. */
interface TaskRef {
  nodeId: string;
  jobId: string;
  attemptId: string;
  taskIndex: number;
}
