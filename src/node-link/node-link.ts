import { jetstream, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  PROTOCOL_VERSION,
  REGISTRATION_ERROR_CODES,
  STREAMS,
  agentConsumerName,
  agentWorkSchema,
  logRequestSchema,
  registrationReplySchema,
  subjects,
  type AgentWork,
  type Heartbeat,
  type LogReply,
  type LogRequest,
  type NodeSpec,
  type NodeState,
  type Registration,
  type StatusReport,
} from '../protocol';
import { JetStreamPublisher } from '../store/js-publisher';
import { WorkFence } from '../store/lease';
import { connectNats } from '../store/nats';
import { agentInboxPrefix } from '../store/nats-auth';
import type { NatsAuthConfig } from '../store/nats-options';
import type { Logger } from '../telemetry/logger';
import { systemClock, type Clock } from '../time';
import { Fence } from './fence';
import { HeartbeatSchedule, phaseShareOf } from './heartbeat-schedule';
import { StatusPublisher } from './status-publisher';

/** What a node's heartbeat carries besides its node and time: live figures and the tasks running. */
export type HeartbeatBody = Omit<Heartbeat, 'type' | 'nodeId' | 'atMs'>;

/** A task's status as a report carries it. */
export type TaskStatus = Pick<StatusReport, 'state' | 'exitCode' | 'signal' | 'reason' | 'measured' | 'usage'>;

/** Sends task status reports (NodeLink.report). */
export interface TaskReports {
  report(nodeId: string, jobId: string, attemptId: string, taskIndex: number, status: TaskStatus): Promise<void>;
}

/** What became of a work message: acknowledged, delivered again a little later, or dropped for good. */
export type WorkOutcome = 'ack' | 'retry' | 'drop';

/** How a registration went: accepted, refused for this spec, or not answered (it may be later). */
export type RegistrationOutcome = { outcome: 'ok'; nodeState: NodeState } | { outcome: 'refused'; code: string; message: string } | { outcome: 'unanswered'; reason: string };

/** Fencing of the node's tasks when contact with NATS is lost (see Fence). */
export interface FenceSettings {
  /** Stop the tasks after this long without confirmed contact (SIGKILL `graceMs` after SIGTERM). */
  afterMs: number;
  graceMs: number;
  clock?: Clock;
}

export interface NodeLinkOptions {
  /** The agent (or bridge) id: its durable consumer, its inbox prefix and its registrations carry it. */
  agentId: string;
  natsUrl: string;
  /** NATS credentials and TLS (the agent's own nkey user when the server enforces permissions). */
  natsAuth?: NatsAuthConfig;
  /** The NATS connection's name, as the server's monitoring shows it. */
  connectionName: string;
  log: Logger;
  now?: () => number;
  /** The heartbeat interval until the scheduler tells its own at registration. */
  heartbeatIntervalMs: number;
  /** A node's heartbeat, taken when it is due; undefined sends none this time (e.g. a NotReady node). */
  heartbeat: (nodeId: string, atMs: number) => Promise<HeartbeatBody | undefined> | HeartbeatBody | undefined;
  /**
   * Does the work (an assignment or a cancel) that passed the term fence. It is called in the order the work
   * arrives; its answer is applied to the message once it settles ('ack' batched, 'retry' a redelivery
   * after half a second); a throw redelivers it after a second.
   */
  onWork: (work: AgentWork) => Promise<WorkOutcome>;
  /** Answers log requests for the link's nodes; without it they are not subscribed to. */
  onLogRequest?: (nodeId: string, request: LogRequest) => Promise<LogReply>;
  /** Registrations are due again (every REREGISTER_MS): the owner registers its nodes, now or soon. */
  onReregisterDue: () => void;
  /** A fence of its own (QY_FENCE_AFTER_MS); with onFence but without it, the fence is half the scheduler's down threshold. */
  fence?: FenceSettings;
  /** Stops every task: the fence fired. Without it there is no fencing (the bridge: kubelets run the pods). */
  onFence?: (silentMs: number, graceMs: number) => void;
  /** Work messages in flight from the consumer (default 512). */
  maxMessages?: number;
}

/** How often registrations are repeated, so a scheduler that lost its node registry learns it again. */
export const REREGISTER_MS = 60_000;
/** Shortest sleep between heartbeat rounds: a link of many nodes sends the ones due within it together. */
const HEARTBEAT_MIN_SLEEP_MS = 50;
/** A work message the owner cannot take yet is delivered again after this long; one that failed, after a second. */
const RETRY_WORK_MS = 500;
/**
 * How long each pull for work waits at the server before the client asks again (nats.js's default is 30 s).
 * Under load, an agent's consumer was seen holding a message undelivered until its pull expired: one job in a
 * bench:real run started exactly 30 s late (no redelivery: it had never been delivered). A shorter pull bounds
 * such a stall; it costs an idle agent a pull every 5 s.
 */
const WORK_PULL_EXPIRES_MS = 5_000;
/**
 * The server's idle heartbeat on a waiting pull. A stalled pull (above) ends when the client's monitor has
 * missed two of them and pulls again: nats.js's default, half the expiry, let a stall last 5 s; at 1 s it
 * lasts about 2 s (bench:real: slowest starts 2.17 and 2.29 s against 5.06-7.39 s), for one more message a
 * second to an idle agent (0.15-0.16% of a core idle against 0.13-0.17%; 500 ms gave 0.19%).
 */
const WORK_IDLE_HEARTBEAT_MS = 1_000;
const FAILED_WORK_MS = 1_000;

/**
 * Work messages of each kind, as the scheduler sends them: parsed once before the agent takes work. zod
 * compiles an object schema's parser at its first parse (about 4 ms here, against 0.1–0.3 ms after), and
 * otherwise every agent of a cluster that starts together pays for it at its first assignment, all in the
 * same second.
 */
export const WORK_WARM_UP: readonly AgentWork[] = [
  {
    type: 'assign',
    jobId: 'warm-up',
    attemptId: 'warm-up-a0',
    nodeId: 'warm-up',
    tenant: 'warm-up',
    tasks: [{ taskIndex: 0, nodeId: 'warm-up', cpuMillis: 1000, memBytes: 256 * 1024 ** 2, gpuIndices: [], gpuMilliEach: 0, extended: {} }],
    hosts: ['warm-up'],
    command: ['true'],
    walltimeMs: 60_000,
    dataClass: 'public',
    sandbox: false,
    term: 1,
    atMs: 0,
  },
  { type: 'cancel', jobId: 'warm-up', attemptId: 'warm-up-a0', nodeId: 'warm-up', taskIndexes: [0], reason: 'warm-up', graceMs: 0, term: 1, atMs: 0 },
];

/** Parses each warm-up message (see WORK_WARM_UP); returns how many parsed, for tests. */
export function warmUpWorkParser(): number {
  return WORK_WARM_UP.filter((work) => agentWorkSchema.safeParse(work).success).length;
}

/**
 * The node side of the protocol with the scheduler, written once for node agents and the Kubernetes bridge:
 * registration on `qy.register.<nodeId>` (the reply sets the heartbeat interval and tells the down
 * threshold), heartbeats on `qy.heartbeat.<nodeId>` spread over the interval (HeartbeatSchedule), work from
 * the owner's durable consumer of QY_ASSIGN behind the leadership-term fence and acknowledged once done,
 * status reports stored in the job log until JetStream has them (StatusPublisher), log replies on
 * `qy.log.<nodeId>`, and the ping fence (Fence) for owners that run tasks themselves. What the nodes are,
 * what a heartbeat says and what work does is the owner's: the agent's processes, or the bridge's pods.
 */
export class NodeLink {
  private nc!: NatsConnection;
  private publisher!: JetStreamPublisher;
  private statuses!: StatusPublisher;
  private readonly schedule: HeartbeatSchedule;
  private readonly logSubs = new Map<string, Subscription>();
  private readonly workFence = new WorkFence();
  private work: ConsumerMessages | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reregisterTimer: NodeJS.Timeout | undefined;
  private acks: JsMsg[] = [];
  private fence: Fence | undefined;
  /** When each node's last heartbeat was handed to NATS (the fence's probe confirms them). */
  private readonly heartbeatSentMs = new Map<string, number>();
  /** The scheduler's down threshold, told at registration; unknown before (no stale-work rule, no default fence). */
  private downAfter: number | undefined;
  /** Since when the link has been in touch with NATS without a break: its connection, or its last reconnect. */
  private contactSinceMs = 0;
  private accepted = false;
  private stopped = false;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly opts: NodeLinkOptions) {
    // Each link at its own point of the interval: agents started together do not all wake at once.
    this.schedule = new HeartbeatSchedule([], opts.heartbeatIntervalMs, phaseShareOf(opts.agentId));
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
  }

  /** The heartbeat interval in force (the scheduler's once a registration was accepted). */
  get heartbeatIntervalMs(): number {
    return this.schedule.interval;
  }

  /** The scheduler's down threshold, once a registration reply told it. */
  get downAfterMs(): number | undefined {
    return this.downAfter;
  }

  /** Connects to NATS with the owner's inbox prefix, and starts a configured fence. */
  async connect(): Promise<void> {
    // Replies come to the agent's own inbox prefix, which its NATS permissions are written for.
    const inboxPrefix = agentInboxPrefix(this.opts.agentId);
    this.nc = await connectNats(this.opts.natsUrl, this.opts.connectionName, this.log, { auth: this.opts.natsAuth, inboxPrefix });
    this.publisher = new JetStreamPublisher(this.nc, 5_000, inboxPrefix);
    this.statuses = new StatusPublisher(this.publisher, this.log);
    this.contactSinceMs = this.now();
    void this.watchContact();
    if (this.opts.fence && this.opts.onFence) this.startFence(this.opts.fence);
  }

  /** The nodes the link serves now: heartbeats (spread over the interval) and log replies follow this set. */
  serve(nodeIds: readonly string[]): void {
    this.schedule.setNodes(nodeIds);
    const wanted = new Set(nodeIds);
    for (const [id, sub] of this.logSubs) {
      if (wanted.has(id)) continue;
      sub.unsubscribe();
      this.logSubs.delete(id);
    }
    // A node that has sent no heartbeat yet holds confirmed contact back (see startFence).
    for (const id of wanted) if (!this.heartbeatSentMs.has(id)) this.heartbeatSentMs.set(id, -Infinity);
    for (const id of this.heartbeatSentMs.keys()) if (!wanted.has(id)) this.heartbeatSentMs.delete(id);
    if (!this.opts.onLogRequest || this.stopped) return;
    for (const id of wanted) if (!this.logSubs.has(id)) this.logSubs.set(id, this.subscribeLogs(id));
  }

  /**
   * Starts what runs on its own once the owner's nodes are registered: the heartbeats (a first round now),
   * the periodic re-registration and the work consumer.
   */
  async run(): Promise<void> {
    this.reregisterTimer = setInterval(() => this.opts.onReregisterDue(), REREGISTER_MS);
    warmUpWorkParser();
    await this.heartbeatRound();
    void this.consumeWork();
  }

  /** Stops taking work, heartbeats, log requests and the fence; reports can still be sent until close. */
  async stopIntake(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.reregisterTimer);
    for (const sub of this.logSubs.values()) sub.unsubscribe();
    this.logSubs.clear();
    this.fence?.stop();
    await this.work?.close().catch(() => undefined);
  }

  /** Gives up on reports not stored yet (they reject) and closes the connection. */
  async close(): Promise<void> {
    this.stopped = true;
    this.statuses?.stop();
    this.publisher?.close();
    await this.nc?.drain().catch(() => undefined);
  }

  // ---- Registration --------------------------------------------------------------------------------

  /** Registers a node once; an accepted registration sets the heartbeat interval and the down threshold. */
  async register(spec: NodeSpec): Promise<RegistrationOutcome> {
    const body: Registration = { type: 'register', v: PROTOCOL_VERSION, agentId: this.opts.agentId, node: spec };
    try {
      const msg = await this.nc.request(subjects.register(spec.id), JSON.stringify(body), { timeout: 5_000 });
      const reply = registrationReplySchema.parse(msg.json());
      if (!reply.ok) return reply.code === REGISTRATION_ERROR_CODES.notReady ? { outcome: 'unanswered', reason: reply.message } : { outcome: 'refused', code: reply.code, message: reply.message };
      this.accepted = true;
      if (reply.heartbeatIntervalMs !== this.schedule.interval) this.setHeartbeatInterval(reply.heartbeatIntervalMs);
      if (reply.downAfterMs !== undefined) this.learnDownAfter(reply.downAfterMs);
      return { outcome: 'ok', nodeState: reply.nodeState };
    } catch (err) {
      this.log.debug({ nodeId: spec.id, err: (err as Error).message }, 'registration not answered');
      return { outcome: 'unanswered', reason: (err as Error).message };
    }
  }

  /** Registers a node, trying again with backoff (250 ms to 5 s) until accepted or the link stops. */
  async registerUntilAccepted(spec: NodeSpec): Promise<void> {
    for (let delayMs = 250; !this.stopped; delayMs = Math.min(5_000, delayMs * 2)) {
      const r = await this.register(spec);
      if (r.outcome === 'ok') return;
      if (r.outcome === 'refused') this.log.error({ nodeId: spec.id, code: r.code }, `registration refused: ${r.message}`);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  /**
   * Whether work sent at `sentAtMs` is too old to start safely. Work that waited in the queue longer than
   * half the down threshold while the link was cut off (the owner was dead, paused or partitioned) may
   * belong to an attempt the scheduler has since run elsewhere, its node declared down: starting it could
   * run the job twice at once. Only work sent before contact broke (the link connected or reconnected
   * since) can be stale: while heartbeats flowed, the nodes could not be declared down. Unknown before a
   * registration reply told the threshold. (Needs clocks in step to well within it.)
   */
  isStale(sentAtMs: number): boolean {
    return this.downAfter !== undefined && sentAtMs < this.contactSinceMs && this.now() - sentAtMs > Math.floor(this.downAfter / 2);
  }

  private async watchContact(): Promise<void> {
    for await (const s of this.nc.status()) if (s.type === 'reconnect') this.contactSinceMs = this.now();
  }

  // ---- Heartbeats ----------------------------------------------------------------------------------

  private setHeartbeatInterval(ms: number): void {
    this.schedule.setInterval(ms);
    // The next round may now be due sooner than the timer set for the old interval.
    if (this.heartbeatTimer !== undefined) this.scheduleHeartbeats();
  }

  /** Sends the heartbeats due now, then sleeps until the next one is due. */
  private async heartbeatRound(): Promise<void> {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.sendHeartbeats();
    // The fence's round trip goes out with the heartbeats it confirms: one wake-up for both.
    this.fence?.probeNow();
    this.scheduleHeartbeats();
  }

  private scheduleHeartbeats(): void {
    if (this.stopped) return;
    clearTimeout(this.heartbeatTimer);
    const sleepMs = Math.max(HEARTBEAT_MIN_SLEEP_MS, this.schedule.nextDueAtMs() - this.now());
    this.heartbeatTimer = setTimeout(() => void this.heartbeatRound(), Math.min(sleepMs, this.schedule.interval));
  }

  /** Sends the heartbeats that are due (each node at its own phase within the interval, not a burst). */
  private async sendHeartbeats(): Promise<void> {
    if (this.stopped || this.nc.isClosed()) return;
    const atMs = this.now();
    for (const nodeId of this.schedule.takeDue(atMs)) {
      try {
        const body = await this.opts.heartbeat(nodeId, atMs);
        if (!body) continue;
        const hb: Heartbeat = { type: 'heartbeat', nodeId, atMs, ...body };
        this.nc.publish(subjects.heartbeat(nodeId), JSON.stringify(hb));
        if (this.heartbeatSentMs.has(nodeId)) this.heartbeatSentMs.set(nodeId, atMs);
      } catch (err) {
        this.log.warn({ nodeId, err: (err as Error).message }, 'heartbeat failed');
      }
    }
  }

  // ---- Work: assignments and cancels -------------------------------------------------------------

  private async consumeWork(): Promise<void> {
    const js = jetstream(this.nc);
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(STREAMS.assign, agentConsumerName(this.opts.agentId));
        this.work = await consumer.consume({ max_messages: this.opts.maxMessages ?? 512, expires: WORK_PULL_EXPIRES_MS, idle_heartbeat: WORK_IDLE_HEARTBEAT_MS });
        void this.watchWork(this.work);
        for await (const msg of this.work) this.onMessage(msg);
      } catch (err) {
        if (this.stopped) return;
        // The scheduler creates the consumer when it accepts a registration: before that, its absence is expected.
        this.log[this.accepted ? 'warn' : 'debug']({ err: (err as Error).message }, 'work consumer unavailable; retrying');
        await new Promise((r) => setTimeout(r, RETRY_WORK_MS));
      }
    }
  }

  /**
   * Says what the work consumer reports about itself. `heartbeats_missed` (warn) is how a stalled consumer
   * shows: in bench:real, every late start ended with it, one pull expiry after the server stopped holding
   * a live pull for this agent (see WORK_PULL_EXPIRES_MS).
   */
  private async watchWork(work: ConsumerMessages): Promise<void> {
    for await (const event of work.status()) {
      if (event.type === 'heartbeat' || event.type === 'next' || event.type === 'flow_control') continue;
      const level = event.type === 'debug' || event.type === 'discard' ? 'debug' : 'warn';
      this.log[level]({ event }, 'work consumer event');
    }
  }

  private onMessage(msg: JsMsg): void {
    let parsed;
    try {
      parsed = agentWorkSchema.safeParse(msg.json());
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.log.error({ subject: msg.subject }, 'unreadable work message; dropped');
      msg.term();
      return;
    }
    const work = parsed.data;
    // Fencing: a deposed leader's late writes carry an older term than work already seen from its successor.
    if (!this.workFence.admits(work.nodeId, work.term)) {
      this.log.warn({ jobId: work.jobId, nodeId: work.nodeId, term: work.term, highestTerm: this.workFence.highestFor(work.nodeId) }, 'work from a deposed scheduler; ignored');
      msg.term();
      return;
    }
    let outcome: Promise<WorkOutcome>;
    try {
      outcome = this.opts.onWork(work);
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      (o) => {
        if (o === 'ack') this.ackLater(msg);
        else if (o === 'retry') msg.nak(RETRY_WORK_MS);
        else msg.term();
      },
      (err: unknown) => {
        this.log.warn({ jobId: work.jobId, err: (err as Error).message }, 'work not done; redelivered later');
        msg.nak(FAILED_WORK_MS);
      },
    );
  }

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

  // ---- Status reports and log replies ---------------------------------------------------------------

  /**
   * Reports a task's status to the job log (`qy.status.<nodeId>`), retried until JetStream stores it;
   * rejects when the link closes first.
   */
  report(nodeId: string, jobId: string, attemptId: string, taskIndex: number, status: TaskStatus): Promise<void> {
    const { state, exitCode, signal, reason, usage, measured } = status;
    return this.statuses.publish({ type: 'status', nodeId, jobId, attemptId, taskIndex, state, exitCode, signal, reason, usage, measured, atMs: this.now() });
  }

  private subscribeLogs(nodeId: string): Subscription {
    return this.nc.subscribe(subjects.log(nodeId), {
      callback: (err, msg) => {
        if (!err) void this.answerLog(nodeId, msg.data).then((reply) => msg.respond(JSON.stringify(reply)));
      },
    });
  }

  private async answerLog(nodeId: string, data: Uint8Array): Promise<LogReply> {
    let parsed;
    try {
      parsed = logRequestSchema.safeParse(JSON.parse(new TextDecoder().decode(data)));
    } catch {
      return { ok: false, message: 'request is not JSON' };
    }
    if (!parsed.success) return { ok: false, message: 'invalid log request' };
    try {
      return await this.opts.onLogRequest!(nodeId, parsed.data);
    } catch (err) {
      return { ok: false, message: `the task's output could not be read: ${(err as Error).message}` };
    }
  }

  // ---- Fencing ------------------------------------------------------------------------------------

  /**
   * The scheduler's down threshold, told at registration. An owner that fences but has no fence of its
   * own (virtual nodes, tests) fences at half of it, so its tasks stop before its nodes can be declared down.
   */
  private learnDownAfter(downAfterMs: number): void {
    this.downAfter = downAfterMs;
    if (this.opts.onFence && !this.fence && !this.stopped) this.startFence({ afterMs: Math.floor(downAfterMs / 2), graceMs: Math.min(2_000, Math.floor(downAfterMs / 4)) });
  }

  /** Confirmed contact is the send time of the oldest node's last heartbeat before a round trip (see Fence). */
  private startFence(settings: FenceSettings): void {
    const clock = settings.clock ?? systemClock;
    this.fence = new Fence({
      afterMs: settings.afterMs,
      clock,
      probe: async () => {
        const sent = [...this.heartbeatSentMs.values()];
        const before = clock.now();
        await this.nc.flush();
        return Math.min(before, ...sent);
      },
      onFence: (silentMs) => this.opts.onFence!(silentMs, settings.graceMs),
      onRestore: () => this.log.warn('contact with NATS is back after the fence fired'),
    });
    this.fence.start();
  }
}
