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
  private timers: Timer[] = [];

  constructor(private readonly opts: FenceOptions) {}

  /** Starts counting from now (the agent has just connected). */
  start(): void {
    const { clock, afterMs } = this.opts;
    this.confirmedMs = clock.now();
    const probeEvery = this.opts.probeEveryMs ?? Math.max(10, Math.min(1_000, Math.floor(afterMs / 4)));
    this.timers.push(clock.setInterval(() => this.probeOnce(), probeEvery));
    this.timers.push(clock.setInterval(() => this.check(), Math.max(10, Math.min(100, Math.floor(afterMs / 20)))));
  }

  stop(): void {
    for (const t of this.timers) t.cancel();
    this.timers = [];
  }

  /** Whether the fence has fired and contact is not back yet. */
  get isFenced(): boolean {
    return this.fenced;
  }

  /** Checks the time since the last confirmed contact; fires the fence once it reaches afterMs. */
  check(): void {
    const silentMs = this.opts.clock.now() - this.confirmedMs;
    if (this.fenced || silentMs < this.opts.afterMs) return;
    this.fenced = true;
    this.opts.onFence(silentMs);
  }

  private probeOnce(): void {
    // One round trip at a time: while NATS is unreachable a probe hangs, and that is the point.
    if (this.probing) return;
    this.probing = true;
    this.opts.probe().then(
      (confirmedMs) => {
        this.probing = false;
        this.confirmedMs = Math.max(this.confirmedMs, confirmedMs);
        if (this.fenced && this.opts.clock.now() - this.confirmedMs < this.opts.afterMs) {
          this.fenced = false;
          this.opts.onRestore();
        }
      },
      () => {
        this.probing = false;
      },
    );
  }
}
