import { join } from 'node:path';
import { jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  PROTOCOL_VERSION,
  STREAMS,
  agentConsumerName,
  agentWorkSchema,
  logRequestSchema,
  registrationReplySchema,
  subjects,
  type Assignment,
  type CancelOrder,
  type Heartbeat,
  type LogReply,
  type NodeSpec,
  type Registration,
  type StatusReport,
  type TaskPlacement,
  type UsageSegment,
} from '../src/protocol';
import { JetStreamPublisher } from '../src/store/js-publisher';
import { WorkFence } from '../src/store/lease';
import { connectNats } from '../src/store/nats';
import { agentInboxPrefix } from '../src/store/nats-auth';
import type { NatsAuthConfig } from '../src/store/nats-options';
import type { Logger } from '../src/telemetry/logger';
import { TaskMeter } from '../src/metering/attribution';
import { Journal } from './journal';
import type { ReportedStatus, TaskExit, TaskHandle, TaskRunner } from './runners/types';
import { StatusPublisher } from './status-publisher';
import type { NodeTelemetry } from './telemetry';

/** A node this agent serves. */
export interface AgentNode {
  spec: NodeSpec;
  telemetry: NodeTelemetry;
}

interface RunningTask {
  key: string;
  nodeId: string;
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
  heartbeatIntervalMs: number;
  log: Logger;
  now?: () => number;
}

/** How often registrations are repeated, so a scheduler that lost its node registry learns it again. */
const REREGISTER_MS = 60_000;
/** Heartbeats are checked this often; each node sends one per heartbeat interval, at its own phase. */
const HEARTBEAT_TICK_MS = 50;

/**
 * A node agent: registers its node(s), sends heartbeats, runs what is assigned to them and reports how
 * each task ended. One agent serves one machine, or many simulated nodes in one process (`--simulate`),
 * speaking the same NATS protocol either way: work arrives on the agent's durable consumer of QY_ASSIGN
 * (`qy.assign.<agentId>.<nodeId>`), status reports go to the job log, heartbeats to core NATS.
 */
export class Agent {
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private statuses!: StatusPublisher;
  private publisher!: JetStreamPublisher;
  private readonly journal: Journal;
  private readonly running = new Map<string, RunningTask>();
  private readonly nodes = new Map<string, AgentNode>();
  private readonly subs: Subscription[] = [];
  private work: ConsumerMessages | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reregisterTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalMs: number;
  private readonly lastHeartbeatMs = new Map<string, number>();
  private stopped = false;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: AgentOptions) {
    for (const node of opts.nodes) this.nodes.set(node.spec.id, node);
    this.journal = new Journal(join(opts.stateDir, 'journal'));
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  get nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  async start(): Promise<void> {
    // Replies come to the agent's own inbox prefix, which its NATS permissions are written for.
    const inboxPrefix = agentInboxPrefix(this.opts.agentId);
    this.nc = await connectNats(this.opts.natsUrl, `qy-agent-${this.opts.agentId}`, this.log, { auth: this.opts.natsAuth, inboxPrefix });
    this.js = jetstream(this.nc);
    this.publisher = new JetStreamPublisher(this.nc, 5_000, inboxPrefix);
    this.statuses = new StatusPublisher(this.publisher, this.log);
    this.recoverFromJournal();
    for (const nodeId of this.nodes.keys()) {
      this.subs.push(
        this.nc.subscribe(subjects.log(nodeId), {
          callback: (err, msg) => {
            if (!err) void this.onLogRequest(msg.data).then((r) => msg.respond(JSON.stringify(r)));
          },
        }),
      );
    }
    await this.registerAll();
    this.heartbeatTimer = setInterval(() => void this.sendHeartbeats(), HEARTBEAT_TICK_MS);
    this.reregisterTimer = setInterval(() => void this.registerAll(), REREGISTER_MS);
    await this.sendHeartbeats();
    void this.consumeWork();
  }

  /** Stops serving. Running tasks are stopped and reported lost, so the scheduler runs them elsewhere. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.reregisterTimer);
    for (const s of this.subs) s.unsubscribe();
    await this.work?.close().catch(() => undefined);
    const stopping = [...this.running.values()].map(
      (task) =>
        new Promise<void>((resolve) => {
          this.exitWaiters.set(task.key, resolve);
          task.handle.cancel(2_000, 'agent stopping');
        }),
    );
    await Promise.race([Promise.all(stopping), new Promise((r) => setTimeout(r, 5_000))]);
    this.statuses.stop();
    this.publisher.close();
    this.journalClosed = true;
    this.journal.close();
    await this.nc.drain().catch(() => undefined);
  }

  /** Tasks being stopped because the agent stops, and what to call when each has exited. */
  private readonly exitWaiters = new Map<string, () => void>();
  private journalClosed = false;

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
      void this.report(task.nodeId, task.jobId, task.attemptId, task.taskIndex, lost, task.key);
    }
    for (const { task, exit } of unreported) void this.report(task.nodeId, task.jobId, task.attemptId, task.taskIndex, exit, task.key);
    this.journal.compact();
  }

  // ---- Registration and heartbeats --------------------------------------------------------------------

  private async registerAll(): Promise<void> {
    const pending = [...this.nodes.values()];
    const workers = Array.from({ length: Math.min(32, pending.length) }, async () => {
      for (let node = pending.shift(); node && !this.stopped; node = pending.shift()) await this.register(node.spec);
    });
    await Promise.all(workers);
  }

  private async register(spec: NodeSpec): Promise<void> {
    const body: Registration = { type: 'register', v: PROTOCOL_VERSION, agentId: this.opts.agentId, node: spec };
    for (let delayMs = 250; !this.stopped; delayMs = Math.min(5_000, delayMs * 2)) {
      try {
        const msg = await this.nc.request(subjects.register(spec.id), JSON.stringify(body), { timeout: 5_000 });
        const reply = registrationReplySchema.parse(msg.json());
        if (reply.ok) {
          if (reply.heartbeatIntervalMs !== this.heartbeatIntervalMs) this.setHeartbeatInterval(reply.heartbeatIntervalMs);
          return;
        }
        if (reply.code !== 'QY_ERR_NOT_READY') this.log.error({ nodeId: spec.id, code: reply.code }, `registration refused: ${reply.message}`);
      } catch (err) {
        this.log.debug({ nodeId: spec.id, err: (err as Error).message }, 'registration not answered; retrying');
      }
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }

  private setHeartbeatInterval(ms: number): void {
    this.heartbeatIntervalMs = ms;
  }

  /**
   * Sends the heartbeats that are due. Each node has its own phase within the interval, so an agent with
   * many (simulated) nodes spreads them out instead of sending a burst the scheduler has to swallow at once.
   */
  private async sendHeartbeats(): Promise<void> {
    if (this.stopped || this.nc.isClosed()) return;
    const nowMs = this.now();
    const interval = this.heartbeatIntervalMs;
    const due: [string, AgentNode][] = [];
    let i = 0;
    const count = this.nodes.size;
    for (const entry of this.nodes) {
      const phaseMs = Math.floor((i++ * interval) / count);
      const last = this.lastHeartbeatMs.get(entry[0]) ?? -Infinity;
      // Due when the node's phase point passed since its last heartbeat (or it never sent one).
      if (nowMs - last >= interval || Math.floor((nowMs - phaseMs) / interval) > Math.floor((last - phaseMs) / interval)) due.push(entry);
    }
    if (due.length === 0) return;
    const byNode = new Map<string, RunningTask[]>();
    for (const task of this.running.values()) {
      const list = byNode.get(task.nodeId) ?? [];
      list.push(task);
      byNode.set(task.nodeId, list);
    }
    for (const [nodeId, node] of due) {
      this.lastHeartbeatMs.set(nodeId, nowMs);
      const tasks = byNode.get(nodeId) ?? [];
      try {
        const sample = await node.telemetry.sample(nowMs, tasks.map((t) => t.placement));
        for (const t of tasks) t.meter.sample(nowMs, sample.powerWatts, sample.greenShare);
        const hb: Heartbeat = { type: 'heartbeat', nodeId, atMs: nowMs, ...sample, running: tasks.map((t) => t.key) };
        this.nc.publish(subjects.heartbeat(nodeId), JSON.stringify(hb));
      } catch (err) {
        this.log.warn({ nodeId, err: (err as Error).message }, 'heartbeat failed');
      }
    }
  }

  // ---- Work: assignments and cancels ------------------------------------------------------------------

  private async consumeWork(): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await this.js.consumers.get(STREAMS.assign, agentConsumerName(this.opts.agentId));
        this.work = await consumer.consume({ max_messages: 512 });
        for await (const msg of this.work) this.onWork(msg);
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: (err as Error).message }, 'work consumer unavailable; retrying');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private onWork(msg: JsMsg): void {
    let parsed;
    try {
      parsed = agentWorkSchema.safeParse(msg.json());
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success || !this.nodes.has(parsed.data.nodeId)) {
      this.log.error({ subject: msg.subject }, 'unreadable work message; dropped');
      msg.term();
      return;
    }
    const work = parsed.data;
    // Fencing: a deposed leader's late writes carry an older term than work already seen from its successor.
    if (!this.fence.admits(work.nodeId, work.term)) {
      this.log.warn({ jobId: work.jobId, nodeId: work.nodeId, term: work.term, highestTerm: this.fence.highestFor(work.nodeId) }, 'work from a deposed scheduler; ignored');
      msg.term();
      return;
    }
    if (work.type === 'assign') this.onAssign(work, msg);
    else {
      this.onCancel(work);
      this.ackLater(msg);
    }
  }

  private acks: JsMsg[] = [];
  /** The highest scheduler leadership term seen in work, per node. */
  private readonly fence = new WorkFence();

  /** Acknowledges at the end of this turn of the event loop, together with the others (one socket write). */
  private ackLater(msg: JsMsg): void {
    if (this.acks.push(msg) === 1) {
      setImmediate(() => {
        const batch = this.acks;
        this.acks = [];
        for (const m of batch) m.ack();
      });
    }
  }

  private onAssign(a: Assignment, msg: JsMsg): void {
    const reports: Promise<void>[] = [];
    for (const task of a.tasks) {
      const key = `${a.attemptId}/${task.taskIndex}`;
      if (this.journal.hasSeen(key)) continue; // a duplicate, or cancelled before it came
      this.journal.started({ key, jobId: a.jobId, attemptId: a.attemptId, nodeId: a.nodeId, taskIndex: task.taskIndex });
      const logPath = join(this.opts.stateDir, 'logs', `${a.attemptId}-${task.taskIndex}.log`);
      const node = this.nodes.get(a.nodeId)!.spec;
      const meter = new TaskMeter({ placement: task, alloc: node.allocatable ?? node.capacity, gpuModel: node.gpuModel, startMs: this.now() });
      const handle = this.opts.runner.start({ key, assignment: a, task, nodeId: a.nodeId, logPath, onExit: (exit) => this.onExit(key, exit) });
      if (handle.pid !== undefined) this.journal.setPid(key, handle.pid);
      this.running.set(key, { key, nodeId: a.nodeId, placement: task, handle, logPath, meter });
      reports.push(this.report(a.nodeId, a.jobId, a.attemptId, task.taskIndex, { state: 'running' }, undefined));
    }
    // Acknowledge once the agent's side is durable: started tasks are journaled, their running reports stored.
    void Promise.all(reports).then(
      () => this.ackLater(msg),
      () => undefined,
    );
  }

  private onCancel(c: CancelOrder): void {
    for (const taskIndex of c.taskIndexes) {
      const key = `${c.attemptId}/${taskIndex}`;
      const task = this.running.get(key);
      if (task) task.handle.cancel(c.graceMs, c.reason);
      else if (!this.journal.hasSeen(key)) {
        // Never started here: it never will, and the scheduler learns it is over.
        this.journal.markSeen(key);
        void this.report(c.nodeId, c.jobId, c.attemptId, taskIndex, { state: 'cancelled', reason: `${c.reason} (before it started)` }, undefined);
      }
    }
  }

  private onExit(key: string, runnerExit: TaskExit): void {
    const task = this.running.get(key);
    if (!task) return;
    this.running.delete(key);
    const waiter = this.exitWaiters.get(key);
    // When the agent is stopping, the task did not end on its own: it is lost for the scheduler, which reruns it.
    const status: ReportedStatus = waiter ? { state: 'lost', reason: 'agent stopped' } : runnerExit;
    this.journal.exited(key, status);
    const [attemptId, taskIndex] = splitKey(key);
    const jobId = attemptId.slice(0, attemptId.lastIndexOf('-a'));
    void this.finalUsage(task)
      .then((usage) => this.report(task.nodeId, jobId, attemptId, taskIndex, status, key, usage))
      .finally(() => waiter?.());
  }

  /**
   * What an ended task used: its node is sampled once more at the end (a task shorter than the heartbeat
   * interval would otherwise have no power sample at all), with the task still counted on it.
   */
  private async finalUsage(task: RunningTask): Promise<UsageSegment[]> {
    const endMs = this.now();
    const onNode = [...this.running.values()].filter((t) => t.nodeId === task.nodeId).map((t) => t.placement);
    try {
      const sample = await this.nodes.get(task.nodeId)!.telemetry.sample(endMs, [...onNode, task.placement]);
      task.meter.sample(endMs, sample.powerWatts, sample.greenShare);
    } catch (err) {
      this.log.warn({ nodeId: task.nodeId, err: (err as Error).message }, 'no power sample at the end of a task; metered from earlier samples');
    }
    return task.meter.finish(endMs);
  }

  /** Sends a status report; with `journalKey`, the journal records once it is stored. */
  private report(nodeId: string, jobId: string, attemptId: string, taskIndex: number, status: ReportedStatus, journalKey: string | undefined, usage?: UsageSegment[]): Promise<void> {
    const report: StatusReport = {
      type: 'status',
      nodeId,
      jobId,
      attemptId,
      taskIndex,
      state: status.state,
      exitCode: status.exitCode,
      signal: status.signal,
      reason: status.reason,
      usage,
      atMs: this.now(),
    };
    return this.statuses.publish(report).then(
      () => {
        if (journalKey && !this.journalClosed) this.journal.reported(journalKey);
      },
      (err: Error) => this.log.warn({ err: err.message, jobId }, 'status report abandoned'),
    );
  }

  private async onLogRequest(data: Uint8Array): Promise<LogReply> {
    let parsed;
    try {
      parsed = logRequestSchema.safeParse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      return { ok: false, message: 'request is not JSON' };
    }
    if (!parsed.success) return { ok: false, message: 'invalid log request' };
    const { attemptId, taskIndex, maxBytes } = parsed.data;
    const logPath = this.running.get(`${attemptId}/${taskIndex}`)?.logPath ?? join(this.opts.stateDir, 'logs', `${attemptId}-${taskIndex}.log`);
    const tail = await this.opts.runner.readLog(logPath, maxBytes);
    return tail ? { ok: true, ...tail } : { ok: false, message: 'the agent has no output for this task (it did not start here, or its log was removed)' };
  }
}

function splitKey(key: string): [string, number] {
  const slash = key.lastIndexOf('/');
  return [key.slice(0, slash), Number(key.slice(slash + 1))];
}
