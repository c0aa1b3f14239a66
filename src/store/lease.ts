import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import type { Logger } from '../telemetry/logger';

/** What the lease key holds: who leads, where to reach it, and its term (one more at every change of leader). */
export const leaseRecordSchema = z.object({
  holder: z.string(),
  address: z.string(),
  term: z.number().int().min(1),
  /** Given up by a leader that stopped: the next replica takes it at once, with the next term. */
  released: z.boolean().optional(),
});
export type LeaseRecord = z.infer<typeof leaseRecordSchema>;

/** Timings of leader election, as in Kubernetes' leaderelection package. */
export interface LeaseTimings {
  /** A standby takes the lease once it has seen it unchanged this long (on its own clock). */
  leaseDurationMs: number;
  /** A leader that could not renew for this long stops leading: before any standby may take over. */
  renewDeadlineMs: number;
  /** How often the leader renews and a standby looks. */
  retryPeriodMs: number;
}

/** Kubernetes' defaults: 15 s, 10 s, 2 s. */
export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** Checks that a deposed leader stops before another can start (renew deadline + margin < lease duration). */
export function assertSafeTimings(t: LeaseTimings): void {
  if (!(t.retryPeriodMs > 0 && t.renewDeadlineMs > t.retryPeriodMs && t.leaseDurationMs > t.renewDeadlineMs + t.retryPeriodMs)) {
    throw new Error(`lease timings: need retry period < renew deadline and renew deadline + retry period < lease duration (got ${t.retryPeriodMs}, ${t.renewDeadlineMs}, ${t.leaseDurationMs} ms)`);
  }
}

/**
 * Leader election on a JetStream KV key with compare-and-set on its revision. The leader rewrites the key
 * every retry period (renewal is an update at the revision it last wrote); a standby takes the key only
 * after seeing the same revision for a whole lease duration on its own clock, so clocks need not agree —
 * only run at the same rate. A leader that has not renewed within the renew deadline stops leading before
 * that can happen: there is never a moment with two leaders. Each new leader raises the term, which its
 * writes carry so that agents and replays can ignore a deposed leader's late ones.
 */
export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  /** Fires at the renew deadline: a leader steps down then even if a renewal is still hanging. */
  private deadline: NodeJS.Timeout | undefined;
  private leading = false;
  /** When the last successful write of the lease was sent. */
  private renewedAtMs = 0;
  private revision = 0;
  private observed: { revision: number; sinceMs: number } | undefined;
  private current: LeaseRecord | undefined;
  private stopped = false;
  private ticksStarted = 0;
  private checkWaiters: { after: number; resolve: () => void }[] = [];

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private readonly me: { holder: string; address: string },
    private readonly timings: LeaseTimings,
    private readonly events: { elected(term: number): void; deposed(reason: string): void },
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    assertSafeTimings(timings);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The leader as last seen (this replica included). */
  get leader(): LeaseRecord | undefined {
    return this.current;
  }

  get term(): number {
    return this.current?.term ?? 0;
  }

  /** Starts campaigning; resolves after the first look at the lease (a free lease is taken by then). */
  start(): Promise<void> {
    return this.tick();
  }

  /** Stops; a leader gives the lease up so a standby need not wait for it to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    for (const w of this.checkWaiters.splice(0)) w.resolve();
    if (this.leading) {
      this.leading = false;
      const record: LeaseRecord = { holder: this.me.holder, address: this.me.address, term: this.term, released: true };
      await this.kv.update(this.key, JSON.stringify(record), this.revision).catch(() => undefined);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    // A standby looks again exactly when the lease it watches would expire, if that comes before the next retry.
    const untilExpiry = this.observed && !this.leading ? this.observed.sinceMs + this.timings.leaseDurationMs - this.now() : Infinity;
    this.timer = setTimeout(() => void this.tick(), Math.max(1, Math.min(this.timings.retryPeriodMs, untilExpiry)));
  }

  private async tick(): Promise<void> {
    const started = ++this.ticksStarted;
    try {
      if (this.leading) await this.renew();
      else await this.tryAcquire();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease check failed');
    } finally {
      this.schedule();
      for (const w of this.checkWaiters.filter((x) => x.after < started)) w.resolve();
      this.checkWaiters = this.checkWaiters.filter((x) => x.after >= started);
    }
  }

  /** Resolves once a look at the lease that starts after this call has ended (whatever it found), or on stop. */
  nextCheck(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.checkWaiters.push({ after: this.ticksStarted, resolve }));
  }

  private async renew(): Promise<void> {
    const record: LeaseRecord = { holder: this.me.holder, address: this.me.address, term: this.term };
    const sentAtMs = this.now();
    try {
      this.revision = await this.kv.update(this.key, JSON.stringify(record), this.revision);
      if (this.leading) this.renewed(sentAtMs);
    } catch (err) {
      // Someone else wrote the key: the lease is no longer ours. Any other error: retry until the deadline.
      if (!/wrong last sequence|key exists/i.test((err as Error).message)) throw err;
      const entry = await this.kv.get(this.key);
      const parsed = entry?.operation === 'PUT' ? leaseRecordSchema.safeParse(entry.json()) : undefined;
      const found = parsed?.success ? parsed.data : undefined;
      // The key moved on, but to this replica's own record of this term: an earlier renewal whose reply was
      // lost (it timed out here) did land. Nobody else has written since (their write would name them), so
      // the lease is still ours: renew from that revision. The deadline still runs from the last renewal
      // confirmed, so a leader that cannot get its writes confirmed still steps down in time. Reading before
      // stepping down is safe: another replica takes the lease only after it stood unchanged for the lease
      // duration, longer than the renew deadline, and confirm() enforces the deadline before every decision.
      if (entry && found && found.holder === this.me.holder && found.term === this.term && !found.released && this.leading) {
        this.log.info({ revision: entry.revision }, 'an earlier renewal landed although its reply was lost; still leading');
        this.revision = entry.revision;
        return;
      }
      this.stepDown('the lease was taken over');
      // Learn the new holder now, so this replica names it at once to clients it refuses.
      this.current = found;
    }
  }

  private async tryAcquire(): Promise<void> {
    const entry = await this.kv.get(this.key);
    const nowMs = this.now();
    if (!entry || entry.operation !== 'PUT') {
      await this.take(entry?.revision, 1, nowMs);
      return;
    }
    const parsed = leaseRecordSchema.safeParse(entry.json());
    this.current = parsed.success ? parsed.data : undefined;
    // Given up, or ours from before a restart (replica ids are unique): nobody else can be leading on it.
    if (this.current?.released || this.current?.holder === this.me.holder) {
      await this.take(entry.revision, this.current.term + 1, nowMs);
      return;
    }
    if (!this.observed || this.observed.revision !== entry.revision) {
      this.observed = { revision: entry.revision, sinceMs: nowMs };
      return;
    }
    if (nowMs - this.observed.sinceMs >= this.timings.leaseDurationMs) await this.take(entry.revision, (this.current?.term ?? 0) + 1, nowMs);
  }

  /** Writes the lease at the revision seen (or creates it); losing the race is not an error. */
  private async take(revision: number | undefined, term: number, nowMs: number): Promise<void> {
    const record: LeaseRecord = { holder: this.me.holder, address: this.me.address, term };
    try {
      this.revision = revision === undefined ? await this.kv.create(this.key, JSON.stringify(record)) : await this.kv.update(this.key, JSON.stringify(record), revision);
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'another replica took the lease first');
      this.observed = undefined;
      return;
    }
    this.current = record;
    this.leading = true;
    this.renewed(nowMs);
    this.observed = undefined;
    this.log.info({ term }, 'elected leader');
    this.events.elected(term);
  }

  /** The lease was written; the renew deadline runs from when the write was sent (the conservative end). */
  private renewed(sentAtMs: number): void {
    this.renewedAtMs = sentAtMs;
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.stepDown(`could not renew the lease for ${this.timings.renewDeadlineMs} ms`), Math.max(0, sentAtMs + this.timings.renewDeadlineMs - this.now()));
  }

  /**
   * Whether this replica still leads by its own clock. A leader past its renew deadline steps down now, even
   * if its deadline timer has not fired yet: after the process was paused (a long GC, SIGSTOP, a frozen VM),
   * work queued while it slept runs before timers do. Call it before acting as leader.
   */
  confirm(): boolean {
    if (this.leading && this.now() - this.renewedAtMs >= this.timings.renewDeadlineMs) this.stepDown(`the renew deadline passed (last renewal ${this.now() - this.renewedAtMs} ms ago)`);
    return this.leading;
  }

  private stepDown(reason: string): void {
    clearTimeout(this.deadline);
    if (!this.leading) return;
    this.leading = false;
    this.observed = undefined;
    this.log.warn({ reason, term: this.term }, 'stepping down');
    this.events.deposed(reason);
  }
}

/**
 * What an agent (or the Kubernetes bridge) keeps to ignore a deposed leader's late work: the highest term
 * seen per node. A node's work comes from the leader of its pool, and pools have their own terms, so the
 * terms of one agent's nodes in different pools are not compared.
 */
export class WorkFence {
  private readonly highest = new Map<string, number>();

  /** Whether to act on work for the node from this term; remembers the term when it is the newest. */
  admits(nodeId: string, term: number | undefined): boolean {
    if (term === undefined) return true;
    const highest = this.highest.get(nodeId) ?? 0;
    if (term < highest) return false;
    this.highest.set(nodeId, term);
    return true;
  }

  /** The highest term seen in work for the node (0 before any). */
  highestFor(nodeId: string): number {
    return this.highest.get(nodeId) ?? 0;
  }
}
