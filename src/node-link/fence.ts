import type { Clock, Timer } from '../time';

export interface FenceOptions {
  /** Stop the tasks after this long without confirmed contact with NATS (QY_FENCE_AFTER_MS). */
  afterMs: number;
  clock: Clock;
  /**
   * Asks NATS for a round trip; resolves with the time up to which contact is confirmed: the send time of
   * the oldest node's last heartbeat before the round trip (the scheduler heard it no earlier), rejects or
   * never resolves while NATS is unreachable.
   */
  probe: () => Promise<number>;
  /** Called once when the fence fires, with how long contact has been lost. */
  onFence: (silentMs: number) => void;
  /** Called once when contact is back after the fence fired. */
  onRestore: () => void;
  /** How often to probe; default min(1000, afterMs / 4). */
  probeEveryMs?: number;
}

/**
 * Fencing of a partitioned node: the agent keeps, by its own clock, the time up to which NATS confirmed
 * its heartbeats. Once that is `afterMs` ago it stops its tasks (the caller sends SIGTERM, then SIGKILL
 * after the kill grace), so by the time the scheduler declares the node down (QY_DOWN_AFTER_MS after the
 * last heartbeat it heard, no earlier than the confirmed time) nothing of its work still runs, and the
 * requeued attempt never overlaps the old one. The rule afterMs + grace + slack ≤ down-after is
 * fenceIsSafe (src/protocol): the agent's configuration and the scheduler's registration both check it.
 */
export class Fence {
  private confirmedMs = 0;
  private fenced = false;
  private probing = false;
  private lastProbeMs = -Infinity;
  private probeEveryMs = 1_000;
  private probeTimer: Timer | undefined;
  /** Fires the fence when confirmed contact is `afterMs` old; moved on by every confirmation (no polling). */
  private deadline: Timer | undefined;
  private running = false;

  constructor(private readonly opts: FenceOptions) {}

  /** Starts counting from now (the agent has just connected). */
  start(): void {
    const { clock, afterMs } = this.opts;
    this.confirmedMs = clock.now();
    this.running = true;
    this.probeEveryMs = this.opts.probeEveryMs ?? Math.max(10, Math.min(1_000, Math.floor(afterMs / 4)));
    this.armProbe();
    this.armDeadline();
  }

  stop(): void {
    this.running = false;
    this.probeTimer?.cancel();
    this.deadline?.cancel();
    this.probeTimer = this.deadline = undefined;
  }

  /** Whether the fence has fired and contact is not back yet. */
  get isFenced(): boolean {
    return this.fenced;
  }

  /** Checks the time since the last confirmed contact; fires the fence once it reaches afterMs. */
  private check(): void {
    const silentMs = this.opts.clock.now() - this.confirmedMs;
    if (this.fenced) return;
    if (silentMs < this.opts.afterMs) return this.armDeadline();
    this.fenced = true;
    this.opts.onFence(silentMs);
  }

  /**
   * One timer at the time the fence would fire, rather than a check every 100 ms: an idle agent wakes for its
   * heartbeat and its probe only. Not armed while fenced (a confirmation that lifts the fence arms it again).
   */
  private armDeadline(): void {
    this.deadline?.cancel();
    this.deadline = undefined;
    if (!this.running || this.fenced) return;
    const waitMs = Math.max(0, this.confirmedMs + this.opts.afterMs - this.opts.clock.now());
    this.deadline = this.opts.clock.setTimeout(() => this.check(), waitMs);
  }

  /**
   * Probes now unless a probe started less than half the probe period ago: the owner calls it right after
   * its heartbeats, so the round trip leaves with them and the probe timer (re-armed by every probe) stays
   * quiet while heartbeats flow as often as probes are needed.
   */
  probeNow(): void {
    if (this.running && this.opts.clock.now() - this.lastProbeMs >= this.probeEveryMs / 2) this.probeOnce();
  }

  private armProbe(): void {
    this.probeTimer?.cancel();
    this.probeTimer = this.running ? this.opts.clock.setTimeout(() => this.probeOnce(), this.probeEveryMs) : undefined;
  }

  private probeOnce(): void {
    this.armProbe();
    // One round trip at a time: while NATS is unreachable a probe hangs, and that is the point.
    if (this.probing) return;
    this.probing = true;
    this.lastProbeMs = this.opts.clock.now();
    this.opts.probe().then(
      (confirmedMs) => {
        this.probing = false;
        this.confirmedMs = Math.max(this.confirmedMs, confirmedMs);
        if (this.fenced && this.opts.clock.now() - this.confirmedMs < this.opts.afterMs) {
          this.fenced = false;
          this.opts.onRestore();
        }
        this.armDeadline();
      },
      () => {
        this.probing = false;
      },
    );
  }
}
