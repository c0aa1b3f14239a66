import type { KV } from '@nats-io/kv';
import { POOLS, type Pool } from '../src/protocol';
import type { JobLog } from '../src/store/job-log';
import { LeaderElector, type LeaseRecord } from '../src/store/lease';
import type { Logger } from '../src/telemetry/logger';
import { leaseTimingsOf, type SchedulerConfig } from './config';

/** The key of a pool's leadership lease in the qy-leases bucket. */
export function leaseKeyOf(pool: Pool): string {
  return `scheduler-${pool}`;
}

/** A write refused or undone because this replica does not (or no longer) lead the pool it concerns. */
export class NotLeaderError extends Error {
  constructor(
    readonly pool: Pool | undefined,
    readonly leader: LeaseRecord | undefined,
  ) {
    const what = pool ? `pool ${pool}` : 'this';
    super(leader && !leader.released ? `the leader of ${what} is ${leader.holder} at ${leader.address} (term ${leader.term})` : `no leader of ${what} is elected yet; retry shortly`);
  }
}

/** What the rest of the scheduler may ask of leadership. */
export interface LeadershipView {
  /** Whether this replica places the pool's jobs and takes its writes now. */
  leads(pool: Pool): boolean;
  /** This replica's term in a pool it leads. */
  termOf(pool: Pool): number | undefined;
  /** The pools this replica leads. */
  readonly ledPools: Pool[];
  /** A pool's leader as this replica last saw its lease. */
  leaderOf(pool: Pool): LeaseRecord | undefined;
  /** Gives up, before acting, a lease whose renew deadline has passed (a paused process). */
  confirm(): void;
}

/** What taking up leadership needs from the rest of the scheduler. */
export interface LeadershipHooks {
  jobLog(): JobLog;
  /** Rebuilds state from the log; the rebuild takes up the pools won (activateWon). */
  rebuild(reason: string): Promise<void>;
  /** A rebuild under way, if any. */
  rebuilding(): Promise<void> | undefined;
  /** A pool was taken up (after its rebuild). */
  tookUp(pool: Pool, term: number): void;
}

/**
 * A leader per pool: each pool has its lease (scheduler-<pool>) in the qy-leases bucket, and one replica may
 * lead several. On election a replica writes a term marker for the pool, rebuilds its state from the log
 * and only then places; a leader that cannot renew stops placing the pool at once (synchronously), before
 * any standby may take over. Leases run on the system clock, whatever clock scheduling runs on.
 */
export class Leadership implements LeadershipView {
  /** The pools this replica leads, with its term in each, once its state is rebuilt as their leader. */
  private readonly led = new Map<Pool, number>();
  /** Terms won in elections, taken up by the next rebuild (while the elector still holds the lease). */
  private readonly won = new Map<Pool, number>();
  private readonly electors = new Map<Pool, LeaderElector>();
  /** Pools lost whose rebuild has not started yet, with why: they share that rebuild. */
  private readonly deposedPending = new Map<Pool, string>();
  /** Serialises becoming leader and stepping down. */
  private transition: Promise<void> = Promise.resolve();
  private stopped = false;
  private advertiseUrl = '';

  constructor(
    private readonly config: SchedulerConfig,
    private readonly log: Logger,
    private readonly hooks: LeadershipHooks,
  ) {}

  leads(pool: Pool): boolean {
    return this.led.has(pool);
  }

  termOf(pool: Pool): number | undefined {
    return this.led.get(pool);
  }

  get ledPools(): Pool[] {
    return [...this.led.keys()];
  }

  /** Whether this replica leads every pool (the usual case with one replica, or after a failover). */
  get leadsAll(): boolean {
    return this.led.size === POOLS.length;
  }

  leaderOf(pool: Pool): LeaseRecord | undefined {
    return this.electors.get(pool)?.leader;
  }

  /** The replica's address, as its leases advertise it. */
  get address(): string {
    return this.advertiseUrl;
  }

  confirm(): void {
    // A lease past its deadline is given up, and giving it up (onDeposed) takes the pool out of `led`.
    for (const pool of [...this.led.keys()]) this.electors.get(pool)?.confirm();
  }

  /** Stops acting for every pool at once (a disconnect, or the start of a rebuild). */
  clear(): void {
    this.led.clear();
  }

  /** After a replay: takes up the pools whose elections this replica has won and still holds. */
  activateWon(): void {
    for (const [pool, term] of this.won) if (this.electors.get(pool)?.isLeader) this.led.set(pool, term);
  }

  /**
   * Joins the leader elections of the three pools (once the API listens, so the leases can say where).
   * Resolves after the first look at each lease: a replica that takes leases at once leads them by then.
   */
  async campaign(kv: KV, advertiseUrl: string): Promise<void> {
    this.advertiseUrl = this.config.advertiseUrl ?? advertiseUrl;
    for (const pool of POOLS) {
      const elector = new LeaderElector(
        kv,
        leaseKeyOf(pool),
        { holder: this.config.replicaId, address: this.advertiseUrl },
        leaseTimingsOf(this.config),
        { elected: () => this.onElected(), deposed: (reason) => this.onDeposed(pool, reason) },
        this.log.child({ component: 'election', pool }),
      );
      this.electors.set(pool, elector);
    }
    await Promise.all([...this.electors.values()].map((e) => e.start()));
    await this.transition;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.led.clear();
    await Promise.all([...this.electors.values()].map((e) => e.stop()));
  }

  private onElected(): void {
    this.transition = this.transition.then(() => this.takeUp());
  }

  /**
   * Takes up every pool whose lease this replica holds but does not lead yet: a term marker each, then one
   * rebuild for all of them (on start, the three elections come together). Needs the log, and NATS may be
   * failing over too: retries while the leases are held.
   */
  private async takeUp(): Promise<void> {
    for (let failures = 0; !this.stopped; ) {
      const due = POOLS.filter((pool) => this.electors.get(pool)?.isLeader && !this.led.has(pool));
      if (due.length === 0) return;
      try {
        const jobLog = this.hooks.jobLog();
        for (const pool of due) {
          if (this.won.has(pool)) continue;
          // A term above every marker of the pool in the log, even if the lease bucket was lost and its terms restarted.
          const term = Math.max(this.electors.get(pool)!.term, (await jobLog.lastTerm(pool)) + 1);
          await jobLog.appendTerm({ type: 'term', pool, term, holder: this.config.replicaId, address: this.advertiseUrl, atMs: Date.now() });
          if (this.electors.get(pool)?.isLeader) this.won.set(pool, term);
        }
        // A rebuild already under way (say, after a reconnect) may have started before these elections: wait it out, then rebuild.
        await this.hooks.rebuilding();
        // Elections that finished meanwhile (they finish together on start and after a takeover) join this
        // rebuild rather than wait for one of their own: with a NATS server lost, each rebuild costs seconds.
        if (POOLS.some((pool) => this.electors.get(pool)?.isLeader && !this.led.has(pool) && !this.won.has(pool))) continue;
        await this.hooks.rebuild(`elected leader of ${due.map((p) => `${p} (term ${this.won.get(p)})`).join(', ')}`);
        for (const pool of due) if (this.led.has(pool)) this.hooks.tookUp(pool, this.led.get(pool)!);
      } catch (err) {
        failures++;
        this.log.error({ err, pools: due, attempt: failures }, 'could not take up leadership yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * failures)));
      }
    }
  }

  /** Stops placing the pool at once (synchronously); state is then rebuilt without it. */
  private onDeposed(pool: Pool, reason: string): void {
    const wasLeading = this.led.has(pool);
    this.led.delete(pool);
    this.won.delete(pool);
    if (this.stopped) return;
    this.log.warn({ pool, reason, wasLeading }, 'no longer leader of the pool; standing by for it');
    // Decisions of the pool still in flight may land after the next leader's marker: rebuild from what the log keeps.
    // Leases taken over together are found lost one renewal apart, and each rebuild costs seconds on a loaded
    // machine: the rebuild waits until every pool still led has looked at its lease once more, and the pools
    // lost by then share it. One lost after it started gets one of its own.
    if (!wasLeading) return;
    this.deposedPending.set(pool, reason);
    if (this.deposedPending.size > 1) return;
    this.transition = this.transition.then(async () => {
      await Promise.all(POOLS.filter((p) => this.led.has(p)).map((p) => this.electors.get(p)?.nextCheck()));
      const lost = [...this.deposedPending].map(([p, why]) => `${p}: ${why}`).join('; ');
      this.deposedPending.clear();
      if (!this.stopped) await this.hooks.rebuild(`deposed from pool ${lost}`);
    });
  }
}
