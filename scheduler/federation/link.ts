import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { routeJob, withRecentOffers, type RecentOffer, type RouteDecision, type RoutedDataset } from '../../src/federation';
import {
  fedReplySchema,
  fedSubjects,
  forwardRequestSchema,
  jobQuestionSchema,
  siteSummarySchema,
  type Claim,
  type FedReply,
  type FederationFile,
  type ForwardRequest,
  type JobQuestion,
  type JobSpec,
  type JobView,
  type Pool,
  type SiteSummary,
} from '../../src/protocol';
import { QY_ERR_INTERNAL, QY_ERR_SITE_UNAVAILABLE } from '../../src/errors';
import { BucketOpener, ClaimStore } from '../../src/store/federation-buckets';
import type { Logger } from '../../src/telemetry/logger';
import type { Clock } from '../../src/time';

/** A handler's way of leaving a request to another replica. */
const NO_ANSWER = Symbol('no answer');

/** How long a request to another site may take. */
const FED_REQUEST_TIMEOUT_MS = 3_000;

/** What the link asks of its own site: the scheduler's state and operations, through a narrow port. */
export interface FederationHost {
  readonly ready: boolean;
  leads(pool: Pool): boolean;
  /** This site's summary now. */
  summary(nowMs: number): SiteSummary;
  /** Stores a job another site routed here (same id; a second copy is a no-op). */
  acceptForwarded(req: ForwardRequest): Promise<void>;
  /** Whether this site's memory holds the job. */
  hasJob(jobId: string): boolean;
  /** The home takes a job back to run it itself (same id). */
  runHere(claim: Claim): Promise<void>;
  /** A job in this site's memory, as its tenant sees it (throws the QY errors). */
  localJob(jobId: string, tenant: string): Promise<JobView>;
  cancelLocal(jobId: string, tenant: string, via: string): Promise<{ id: string; state: string }>;
  logLocal(jobId: string, tenant: string, task: number, bytes: number): Promise<unknown>;
  /** A job's metered usage in a period, as its tenant sees it. */
  usageLocal(jobId: string, tenant: string, period: string): Promise<unknown>;
  /** The claim was lost to another site: the job must not start here. */
  giveBack(jobId: string, reason: string): void;
}

export interface FederationLinkOptions {
  site: string;
  federation: FederationFile;
  nc: NatsConnection;
  replicas: number;
  summaryIntervalMs: number;
  siteDownAfterMs: number;
  /** How long a claim stays in this site's bucket after its last write (offered claims are renewed). */
  claimRetentionMs?: number;
  clock: Clock;
  log: Logger;
}

/** An error answer from another site, thrown as the QY error it names (the API's error handler keeps code and status). */
function remoteError(reply: Extract<FedReply, { ok: false }>): Error {
  return Object.assign(new Error(reply.message), { code: reply.code, statusCode: reply.statusCode });
}

/**
 * This site's link to the federation, over the NATS account the sites share across gateways: it publishes
 * the site's summary and hears the others', routes jobs, forwards those routed away under a claim held in
 * this site's bucket, answers the other sites' forwarded jobs and questions, gates the start of jobs routed
 * here on the home's claim, and routes again the jobs offered to a site that went silent before starting them.
 */
export class FederationLink {
  readonly claims: ClaimStore;
  private readonly summaries = new Map<string, SiteSummary>();
  /** Jobs this site routed away and that have not started yet: watched, forwarded again, routed again. */
  private readonly offered = new Set<string>();
  /** Offered jobs the executor has acknowledged. */
  private readonly accepted = new Set<string>();
  /** Jobs routed here whose claim this site holds as started: their assignments may go out. */
  private readonly confirmed = new Set<string>();
  private readonly gating = new Set<string>();
  /** Offers made since each site's last summary (dropped once a newer summary covers them). */
  private recentOffers: RecentOffer[] = [];
  private readonly subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private host: FederationHost | undefined;
  private stopped = false;

  constructor(private readonly o: FederationLinkOptions) {
    this.claims = new ClaimStore(new BucketOpener(o.nc, o.replicas), o.site, o.claimRetentionMs);
  }

  get site(): string {
    return this.o.site;
  }

  /** Starts serving once the site's operations exist; picks up the claims still offered. */
  async start(host: FederationHost): Promise<void> {
    this.host = host;
    const { nc } = this.o;
    this.subs.push(nc.subscribe(fedSubjects.allSummaries, { callback: (_e, m) => this.heard(m.json()) }));
    this.subs.push(nc.subscribe(fedSubjects.submit(this.site), { callback: (_e, m) => void this.answer(m, () => this.onForward(m.json())) }));
    this.subs.push(nc.subscribe(fedSubjects.job(this.site), { callback: (_e, m) => void this.answer(m, () => this.onQuestion(m.json())) }));
    for (const key of await this.claims.keys()) this.offered.add(key);
    this.timer = setInterval(() => void this.tick(), this.o.summaryIntervalMs);
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
  }

  /** The latest summary of every site, this one's fresh. */
  summariesNow(): Map<string, SiteSummary> {
    const all = new Map(this.summaries);
    if (this.host) all.set(this.site, this.host.summary(this.o.clock.now()));
    return all;
  }

  /** Where a job should run, from the sites' latest summaries. */
  route(spec: JobSpec, inputs: RoutedDataset[], exclude: string[] = []): RouteDecision {
    return routeJob({
      job: { ...spec, resources: spec.resources },
      inputs,
      home: this.site,
      federation: this.o.federation,
      summaries: withRecentOffers(this.summariesNow(), this.recentOffers),
      nowMs: this.o.clock.now(),
      staleAfterMs: this.o.siteDownAfterMs,
      exclude,
    });
  }

  /** Records the claim of a job routed away, then forwards it (a failed forward is retried by the watch). */
  async offer(claim: Claim): Promise<void> {
    await this.claims.create(claim);
    this.offered.add(claim.jobId);
    this.noteOffer(claim);
    await this.forward(claim).catch((err: Error) => this.o.log.warn({ jobId: claim.jobId, site: claim.executor, err: err.message }, 'forward failed; will retry or route again'));
  }

  private noteOffer(claim: Claim): void {
    const r = claim.spec.resources;
    this.recentOffers.push({ site: claim.executor, pool: claim.spec.pool, atMs: this.o.clock.now(), cpuMillis: claim.spec.tasks * r.cpuMillis, gpuMilli: claim.spec.tasks * (r.gpus * 1000 + r.gpuMilli) });
  }

  private async forward(claim: Claim): Promise<void> {
    const req: ForwardRequest = { type: 'forward', jobId: claim.jobId, home: this.site, tenant: claim.tenant, spec: claim.spec, submittedAtMs: claim.submittedAtMs, route: claim.route };
    await this.ask(claim.executor, fedSubjects.submit(claim.executor), req);
    this.accepted.add(claim.jobId);
  }

  /** Sends a request to another site and returns the body of its answer; throws its error or QY_ERR_SITE_UNAVAILABLE. */
  async ask(site: string, subject: string, body: unknown): Promise<unknown> {
    let raw: unknown;
    try {
      raw = (await this.o.nc.request(subject, JSON.stringify(body), { timeout: FED_REQUEST_TIMEOUT_MS })).json();
    } catch (err) {
      throw new QY_ERR_SITE_UNAVAILABLE(site, (err as Error).message, { cause: err });
    }
    const reply = fedReplySchema.parse(raw);
    if (!reply.ok) throw remoteError(reply);
    return reply.body;
  }

  /** Asks the site running a job about it. */
  question(site: string, q: JobQuestion): Promise<unknown> {
    return this.ask(site, fedSubjects.job(site), q);
  }

  // ---- The executor's side -----------------------------------------------------------------------------------

  private async onForward(data: unknown): Promise<unknown> {
    const req = forwardRequestSchema.parse(data);
    // Every replica of this site hears the request; the leader of the job's pool answers it.
    if (!this.host!.leads(req.spec.pool)) return NO_ANSWER;
    await this.host!.acceptForwarded(req);
    return { accepted: true };
  }

  private async onQuestion(data: unknown): Promise<unknown> {
    const q = jobQuestionSchema.parse(data);
    const host = this.host!;
    if (q.op === 'get') return host.localJob(q.jobId, q.tenant);
    if (q.op === 'cancel') return host.cancelLocal(q.jobId, q.tenant, `site:${q.by}`);
    if (q.op === 'usage') return host.usageLocal(q.jobId, q.tenant, q.period ?? '');
    return host.logLocal(q.jobId, q.tenant, q.task, q.bytes);
  }

  /** Runs a handler and replies with its body or its error (never leaves a request unanswered). */
  private async answer(m: { respond(data: string): boolean }, handler: () => Promise<unknown>): Promise<void> {
    let reply: FedReply;
    try {
      const body = await handler();
      if (body === NO_ANSWER) return;
      reply = { ok: true, body };
    } catch (err) {
      const e = err as Error & { code?: string; statusCode?: number };
      const qy = typeof e.code === 'string' && e.code.startsWith('QY_ERR_') ? e : new QY_ERR_INTERNAL(e.message);
      reply = { ok: false, code: qy.code!, message: qy.message, statusCode: (qy as { statusCode?: number }).statusCode ?? 500 };
    }
    m.respond(JSON.stringify(reply));
  }

  /**
   * Sends a forwarded job's work to its agents only once the home's claim says this site starts it: the
   * compare-and-set from `offered` to `started` either wins (the home can no longer take it back) or finds
   * the job given to another site (it is given up here, never started). While the home cannot be reached,
   * the job keeps its place and waits.
   */
  gate(jobId: string, home: string, stillCurrent: () => boolean, send: () => void): void {
    if (this.confirmed.has(jobId)) return send();
    if (this.gating.has(jobId)) return;
    this.gating.add(jobId);
    void (async () => {
      for (let delayMs = 250; !this.stopped && stillCurrent(); delayMs = Math.min(delayMs * 2, 5_000)) {
        try {
          const bid = await this.claims.bidToStart(home, jobId, this.site);
          if (bid.ok) {
            this.confirmed.add(jobId);
            if (stillCurrent()) send();
          } else this.host!.giveBack(jobId, `given back to ${home}: ${bid.reason}`);
          return;
        } catch (err) {
          this.o.log.warn({ jobId, home, err: (err as Error).message }, 'cannot reach the home site\'s claim; the job waits');
          await new Promise((r) => setTimeout(r, delayMs));
        }
      }
    })().finally(() => this.gating.delete(jobId));
  }

  /** Whether a forwarded job's start was confirmed (agents may get its work on a reconcile). */
  mayStart(jobId: string): boolean {
    return this.confirmed.has(jobId);
  }

  // ---- The home's watch ---------------------------------------------------------------------------------------

  private heard(data: unknown): void {
    const parsed = siteSummarySchema.safeParse(data);
    if (!parsed.success || parsed.data.site === this.site) return;
    this.summaries.set(parsed.data.site, parsed.data);
    this.recentOffers = this.recentOffers.filter((o) => o.site !== parsed.data.site || o.atMs >= parsed.data.atMs);
  }

  private isAlive(site: string): boolean {
    const s = this.summaries.get(site);
    return s !== undefined && this.o.clock.now() - s.atMs <= this.o.siteDownAfterMs;
  }

  private ticking = false;

  /** Publishes this site's summary and looks after the jobs offered away and not started. */
  private async tick(): Promise<void> {
    const host = this.host;
    if (!host || this.stopped || this.ticking) return;
    this.ticking = true;
    try {
      if (host.ready) this.o.nc.publish(fedSubjects.summary(this.site), JSON.stringify(host.summary(this.o.clock.now())));
      if (!host.ready) return;
      for (const jobId of [...this.offered]) await this.watchOffered(jobId).catch((err: Error) => this.o.log.warn({ jobId, err: err.message }, 'watching an offered job failed'));
    } finally {
      this.ticking = false;
    }
  }

  private async watchOffered(jobId: string): Promise<void> {
    const held = await this.claims.get(this.site, jobId);
    // Renewed before the bucket's retention would let it go while it waits; looked at again next round.
    if (held && (await this.claims.renewOffered(held, this.o.clock.now()))) return;
    if (held?.value.state === 'offered' && held.value.executor === this.site && !this.host!.hasJob(jobId)) {
      // Taken back to run here, but not stored yet (the store failed): store it now.
      await this.host!.runHere(held.value);
      return;
    }
    if (!held || held.value.state !== 'offered' || held.value.executor === this.site) {
      this.offered.delete(jobId);
      this.accepted.delete(jobId);
      return;
    }
    const claim = held.value;
    let refusal: string | undefined;
    if (this.isAlive(claim.executor)) {
      if (this.accepted.has(jobId)) return;
      try {
        await this.forward(claim);
        return;
      } catch (err) {
        // A 4xx answer (the job can never run there, the tenant is unknown there) is a refusal: route again.
        const status = (err as { statusCode?: number }).statusCode ?? 503;
        if (status >= 500) throw err;
        refusal = (err as Error).message;
      }
    }
    // The executor refused the job, or went silent before starting it: route it again, away from every site that had it.
    const gaveBack = [...claim.gaveBack, claim.executor];
    const decision = this.route(claim.spec, claim.inputs, gaveBack);
    if (decision.kind !== 'routed') return; // nowhere else: it waits for the executor to come back
    const next: Claim = { ...claim, executor: decision.site, gaveBack, route: decision.reason };
    if (!(await this.claims.replace(next, held.revision))) return; // the executor started it meanwhile
    this.accepted.delete(jobId);
    this.o.log.warn({ jobId, from: claim.executor, to: next.executor, refusal }, refusal ? 'site refused the job: routed again' : 'site silent before starting the job: routed again');
    if (next.executor === this.site) await this.host!.runHere(next);
    else {
      this.noteOffer(next);
      await this.forward(next).catch(() => undefined);
    }
  }
}
