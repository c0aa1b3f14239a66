import { jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { PROTOCOL_VERSION, STREAMS, agentConsumerName, agentWorkSchema, registrationReplySchema, subjects, type Assignment, type CancelOrder, type NodeSpec, type StatusReport } from '../../src/protocol';
import { JetStreamPublisher } from '../../src/store/js-publisher';

/** An attempt the agent holds, with when its tasks finish (virtual time). */
interface Held {
  assignment: Assignment[];
  placedAtMs: number;
  killed: boolean;
}

/**
 * An agent a test drives in virtual time: it registers nodes, heartbeats them when told, receives work on
 * its durable consumer like a real agent, and reports tasks' ends only when the test says the time has come
 * (a task of job J ends `runMsOf(J)` after its placement). Cancels are answered at once (`cancelled`); a node
 * made silent stops heartbeating, and its tasks never report (the scheduler finds them lost).
 */
export class ScriptedAgent {
  private nc!: NatsConnection;
  private publisher!: JetStreamPublisher;
  private work: ConsumerMessages | undefined;
  private readonly held = new Map<string, Held>();
  private readonly silent = new Set<string>();
  /** Cancel orders received and not answered yet: the test answers them one at a time (reportCancel). */
  private readonly cancels: CancelOrder[] = [];
  /** Reports published, to wait for the scheduler to apply them. */
  published = 0;

  constructor(
    private readonly agentId: string,
    private readonly nodes: readonly NodeSpec[],
    private readonly runMsOf: (jobId: string) => number,
    private readonly greenShare: number,
  ) {}

  async start(natsUrl: string): Promise<void> {
    this.nc = await connect({ servers: natsUrl, name: `scripted-${this.agentId}` });
    this.publisher = new JetStreamPublisher(this.nc);
    // One node at a time, in order: the scheduler's cluster keeps them in that order (placement depends on it).
    for (const node of this.nodes) {
      const reply = registrationReplySchema.parse((await this.nc.request(subjects.register(node.id), JSON.stringify({ type: 'register', v: PROTOCOL_VERSION, agentId: this.agentId, node }), { timeout: 10_000 })).json());
      if (!reply.ok) throw new Error(`registration of ${node.id} refused: ${reply.message}`);
    }
    const js = jetstream(this.nc);
    this.work = await (await js.consumers.get(STREAMS.assign, agentConsumerName(this.agentId))).consume({ max_messages: 256 });
    void (async () => {
      for await (const msg of this.work!) {
        const work = agentWorkSchema.parse(msg.json());
        if (work.type === 'assign') {
          const held = this.held.get(work.attemptId);
          if (held) held.assignment.push(work);
          else this.held.set(work.attemptId, { assignment: [work], placedAtMs: work.atMs, killed: false });
        } else {
          const held = this.held.get(work.attemptId);
          if (held) held.killed = true;
          this.cancels.push(work);
        }
        msg.ack();
      }
    })();
  }

  /** Whether a cancel order for this task of this attempt is waiting to be answered. */
  hasCancel(attemptId: string, taskIndex: number): boolean {
    return this.cancels.some((c) => c.attemptId === attemptId && c.taskIndexes.includes(taskIndex));
  }

  /** Answers the oldest cancel order (its tasks stopped); false when none waits. */
  async reportCancel(): Promise<boolean> {
    const c = this.cancels.shift();
    if (!c) return false;
    for (const taskIndex of c.taskIndexes) await this.report({ nodeId: c.nodeId, jobId: c.jobId, attemptId: c.attemptId, taskIndex, state: 'cancelled', atMs: c.atMs });
    return true;
  }

  /** Whether the agent has received the assignment of every task of this attempt. */
  hasAttempt(attemptId: string, tasks: number): boolean {
    const held = this.held.get(attemptId);
    return held !== undefined && held.assignment.reduce((n, a) => n + a.tasks.length, 0) === tasks;
  }

  /** What the agent holds of an attempt (for a failing test's message). */
  heldOf(attemptId: string): { endsAtMs: number; killed: boolean; tasks: number } | undefined {
    const h = this.held.get(attemptId);
    return h && { endsAtMs: this.endOf(h), killed: h.killed, tasks: h.assignment.reduce((n, a) => n + a.tasks.length, 0) };
  }

  /** The earliest time an attempt held here ends after `afterMs`, or Infinity. */
  nextEndAfter(afterMs: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const h of this.held.values()) if (!h.killed && this.endOf(h) > afterMs && this.endOf(h) < next) next = this.endOf(h);
    return next;
  }

  /** An attempt ends its job's run time after it was placed (looked up late: a fast-path placement reaches the agent before the test knows the job's id). */
  private endOf(h: Held): number {
    return h.placedAtMs + this.runMsOf(h.assignment[0].jobId);
  }

  /** Reports `succeeded` for every task of the attempts that end at `atMs`. */
  async finishAt(atMs: number): Promise<void> {
    for (const [attemptId, h] of this.held) {
      if (h.killed || this.endOf(h) !== atMs) continue;
      this.held.delete(attemptId);
      for (const a of h.assignment) for (const t of a.tasks) await this.report({ nodeId: a.nodeId, jobId: a.jobId, attemptId, taskIndex: t.taskIndex, state: 'succeeded', exitCode: 0, atMs });
    }
  }

  /** The node's heartbeats stop (its tasks go on until it fails). */
  silence(nodeId: string): void {
    this.silent.add(nodeId);
  }

  /** The node fails: its tasks never report (the scheduler finds them lost). */
  fail(nodeId: string): void {
    for (const h of this.held.values()) if (h.assignment.some((a) => a.nodeId === nodeId)) h.killed = true;
  }

  revive(nodeId: string): void {
    this.silent.delete(nodeId);
  }

  /** Heartbeats every node that is not silent. */
  heartbeat(atMs: number): string[] {
    const sent: string[] = [];
    for (const node of this.nodes) {
      if (this.silent.has(node.id)) continue;
      this.nc.publish(subjects.heartbeat(node.id), JSON.stringify({ type: 'heartbeat', nodeId: node.id, atMs, cpuUtil: 0, memUsedBytes: 0, gpus: [], powerWatts: 0, greenShare: this.greenShare, powerSource: 'simulated', running: [] }));
      sent.push(node.id);
    }
    return sent;
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async stop(): Promise<void> {
    await this.work?.close().catch(() => undefined);
    this.publisher?.close();
    await this.nc?.drain().catch(() => undefined);
  }

  private async report(r: Omit<StatusReport, 'type'>): Promise<void> {
    await this.publisher.publish(subjects.status(r.nodeId), JSON.stringify({ type: 'status', ...r }));
    this.published++;
  }
}
