import { createHash } from 'node:crypto';

/**
 * When each node of a link (an agent's, or the Kubernetes bridge's) sends its heartbeat. Every node sends
 * one per interval at its own phase (node i of n at i/n of the interval, shifted by the link's own offset),
 * so a link with many nodes spreads them out instead of sending a burst, and links spread theirs too; a node
 * that never sent one is due at once. The link sleeps until the next one is due (`nextDueAtMs`) rather than
 * polling: a link of one node wakes once per interval.
 *
 * Phases are points of the clock, not of the link's start: without the offset every agent of one node had
 * phase 0 and woke on the second, all of them at once. In bench:real (100 agents on 2 cores) the slow starts
 * came in bursts at one point of each second: tasks assigned then waited for a CPU behind 100 heartbeats.
 */
export class HeartbeatSchedule {
  private readonly phases = new Map<string, number>();
  /** When each node's next heartbeat is due; absent until its first one is sent (due at once). */
  private readonly nextAt = new Map<string, number>();
  private readonly lastAt = new Map<string, number>();

  constructor(
    nodeIds: readonly string[],
    private intervalMs: number,
    /** The link's offset, a share of the interval in [0, 1) (see {@link phaseShareOf}). */
    private readonly offsetShare = 0,
  ) {
    this.setNodes(nodeIds);
  }

  /**
   * The nodes to send heartbeats for (the bridge's come and go with the cluster): phases are spread over
   * the interval again, a node kept sends its next heartbeat at its new phase within one interval of its
   * last, a new node is due at once, a removed one is forgotten.
   */
  setNodes(nodeIds: readonly string[]): void {
    if (nodeIds.length === this.phases.size && nodeIds.every((id) => this.phases.has(id))) return;
    const kept = new Set(nodeIds);
    for (const id of this.phases.keys()) {
      if (kept.has(id)) continue;
      this.nextAt.delete(id);
      this.lastAt.delete(id);
    }
    this.phases.clear();
    this.spread(nodeIds);
  }

  get interval(): number {
    return this.intervalMs;
  }

  /** A new interval (the scheduler's): phases are spread over it and each node's next heartbeat follows its last one. */
  setInterval(intervalMs: number): void {
    if (intervalMs === this.intervalMs) return;
    this.intervalMs = intervalMs;
    this.spread([...this.phases.keys()]);
  }

  /** Node i of n at (offset + i/n) of the interval; each node's next heartbeat follows its last one. */
  private spread(nodeIds: readonly string[]): void {
    const offsetMs = Math.floor(this.offsetShare * this.intervalMs);
    nodeIds.forEach((id, i) => this.phases.set(id, (offsetMs + Math.floor((i * this.intervalMs) / nodeIds.length)) % this.intervalMs));
    for (const [id, last] of this.lastAt) this.nextAt.set(id, this.phasePointAfter(id, last));
  }

  /** When the node last sent a heartbeat (-Infinity before its first). */
  lastSentAtMs(nodeId: string): number {
    return this.lastAt.get(nodeId) ?? -Infinity;
  }

  /** The nodes whose heartbeat is due at `nowMs`; they are counted as sent now. */
  takeDue(nowMs: number): string[] {
    const due: string[] = [];
    for (const id of this.phases.keys()) {
      const next = this.nextAt.get(id);
      if (next !== undefined && next > nowMs) continue;
      due.push(id);
      this.lastAt.set(id, nowMs);
      this.nextAt.set(id, this.phasePointAfter(id, nowMs));
    }
    return due;
  }

  /** When the next heartbeat is due (now or earlier when one is already due; +Infinity without nodes). */
  nextDueAtMs(): number {
    let min = Infinity;
    for (const id of this.phases.keys()) {
      const next = this.nextAt.get(id);
      if (next === undefined) return -Infinity;
      if (next < min) min = next;
    }
    return min;
  }

  /** The node's first phase point strictly after `ms`, and at most one interval after it. */
  private phasePointAfter(id: string, ms: number): number {
    const phase = this.phases.get(id) ?? 0;
    return phase + (Math.floor((ms - phase) / this.intervalMs) + 1) * this.intervalMs;
  }
}

/**
 * A link's heartbeat offset from its id, a share of the interval in [0, 1): the same for an agent across
 * restarts, and spread evenly over agents (the first 32 bits of the id's SHA-256).
 */
export function phaseShareOf(id: string): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0) / 2 ** 32;
}
