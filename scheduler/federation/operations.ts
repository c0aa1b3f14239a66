import { createHash } from 'node:crypto';
import type { RouteDecision, RoutedDataset } from '../../src/federation';
import type { Claim, JobSpec, JobState, JobView } from '../../src/protocol';
import { QY_ERR_FEDERATION_DISABLED, QY_ERR_FORBIDDEN, QY_ERR_IDEMPOTENCY_KEY_REUSED, QY_ERR_JOB_FINISHED, QY_ERR_JOB_NOT_FOUND, QY_ERR_NO_FEASIBLE_SITE, QY_ERR_STORE_UNAVAILABLE, QY_ERR_UNKNOWN_SITE } from '../../src/errors';
import { newJobId } from '../ids';
import type { JobLogTail } from '../job-logs';
import type { OperationsDeps } from '../operations-deps';
import type { Principal } from '../tenants';
import type { UsageQuery } from '../accounting';
import type { UsageSummary } from '../../src/billing';
import type { DatasetOps } from './datasets';
import type { FederationHost, FederationLink } from './link';
import { siteSummaryOf } from './summary';

/** What the federated operations use of the scheduler's own operations. */
export interface LocalOperations {
  readonly datasets: DatasetOps;
  storeJob(spec: JobSpec, tenant: string, idempotencyKey: string | undefined, federated?: { id: string; homeSite?: string; route?: string; submittedAtMs?: number }): Promise<{ id: string; state: JobState }>;
  getJob(jobId: string, principal: Principal): Promise<JobView>;
  cancel(jobId: string, principal: Principal): Promise<{ id: string; state: JobState }>;
  jobLog(jobId: string, principal: Principal, taskIndex: number, maxBytes: number): Promise<JobLogTail>;
  usage(filter: UsageQuery, principal: Principal): Promise<UsageSummary & { period: string; interval: string }>;
  audited(principal: Principal | { kind: 'system'; name: string }, entry: { action: string; target?: string; details?: Record<string, unknown> }): Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString();
const hashOf = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The API's operations where federation adds to them: routing at submission, a job routed away (its claim,
 * its view, cancel and log proxied to the site running it), and the port through which the federation link
 * reaches this site's state.
 */
export class FederatedOperations {
  constructor(
    private readonly s: OperationsDeps,
    private readonly local: LocalOperations,
  ) {}

  private get link(): FederationLink | undefined {
    return this.s.federation;
  }

  /**
   * Where a new job runs: here (with the router's reason, when federated) or at another site. Checks the
   * sites it names and its datasets (the tenant's own, not destroyed) first.
   */
  async route(spec: JobSpec, principal: Principal): Promise<{ inputs: RoutedDataset[]; decision?: Extract<RouteDecision, { kind: 'routed' }> }> {
    if (spec.sites && !this.link) throw new QY_ERR_FEDERATION_DISABLED(`the job names sites ${spec.sites.join(', ')}`);
    const known = this.s.federationFile?.sites.map((x) => x.name) ?? [];
    for (const site of spec.sites ?? []) if (!known.includes(site)) throw new QY_ERR_UNKNOWN_SITE(site, known.join(', '));
    const inputs = spec.inputs || spec.outputs ? await this.local.datasets.resolve(spec, principal) : [];
    if (!this.link) return { inputs };
    const decision = this.link.route(spec, inputs);
    if (decision.kind === 'infeasible') throw new QY_ERR_NO_FEASIBLE_SITE(decision.reason);
    return { inputs, decision };
  }

  /** The job an Idempotency-Key made when it was routed away; a reuse with another body is refused. */
  async replayAway(tenant: string, idempotencyKey: string, specJson: string): Promise<{ id: string; state: JobState; replayed: true } | undefined> {
    if (!this.link) return undefined;
    const record = await this.link.claims.idempotencyRecord(tenant, idempotencyKey).catch((err: Error) => {
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!record) return undefined;
    if (record.specHash !== hashOf(specJson)) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
    return { id: record.jobId, state: 'pending', replayed: true };
  }

  /**
   * Accepts a job routed to another site: its claim is stored here (durable) before the answer, then it is
   * forwarded. With an Idempotency-Key, the key is taken first (create-only), so a retry finds this job.
   */
  async submitAway(spec: JobSpec, principal: Principal & { kind: 'tenant' }, decision: Extract<RouteDecision, { kind: 'routed' }>, inputs: RoutedDataset[], idempotencyKey?: string): Promise<{ id: string; state: JobState; replayed: boolean }> {
    const link = this.link!;
    const nowMs = this.s.clock.now();
    const id = newJobId(nowMs);
    const claim: Claim = { jobId: id, home: link.site, executor: decision.site, state: 'offered', tenant: principal.name, spec, submittedAtMs: nowMs, route: decision.reason, gaveBack: [], inputs };
    const specJson = JSON.stringify(spec);
    try {
      if (idempotencyKey !== undefined) {
        const first = await link.claims.claimIdempotencyKey(principal.name, idempotencyKey, { jobId: id, specHash: hashOf(specJson) });
        if (first) {
          if (first.specHash !== hashOf(specJson)) throw new QY_ERR_IDEMPOTENCY_KEY_REUSED(idempotencyKey);
          return { id: first.jobId, state: 'pending', replayed: true };
        }
      }
      await link.offer(claim).catch(async (err: Error) => {
        if (idempotencyKey !== undefined) await link.claims.releaseIdempotencyKey(principal.name, idempotencyKey).catch(() => undefined);
        throw err;
      });
    } catch (err) {
      if (err instanceof QY_ERR_IDEMPOTENCY_KEY_REUSED) throw err;
      throw new QY_ERR_STORE_UNAVAILABLE((err as Error).message, { cause: err });
    }
    this.s.metrics.jobsSubmitted.inc({ pool: spec.pool, tenant: principal.name });
    await this.local.audited(principal, { action: 'job.submit', target: id, details: { pool: spec.pool, priorityClass: spec.priorityClass, tasks: spec.tasks, site: decision.site, route: decision.reason } });
    await this.local.datasets.recordUse(id, spec, principal, decision.site);
    return { id, state: 'pending', replayed: false };
  }

  /** The claim of a job this site routed away, if the principal may see it. */
  private async claimOf(jobId: string, principal: Principal): Promise<{ value: Claim; revision: number } | undefined> {
    if (!this.link) return undefined;
    const held = await this.link.claims.get(this.link.site, jobId).catch(() => undefined);
    if (!held || held.value.executor === this.link.site) return undefined;
    if (principal.kind === 'tenant' && held.value.tenant !== principal.name) return undefined;
    return held;
  }

  /** A job routed away, as the site running it shows it; from the claim while that site does not answer. */
  async remoteView(jobId: string, principal: Principal): Promise<JobView | undefined> {
    const held = await this.claimOf(jobId, principal);
    if (!held) return undefined;
    const c = held.value;
    if (c.state === 'cancelled') return this.claimView(c, 'cancelled', undefined);
    try {
      const view = (await this.link!.question(c.executor, { type: 'job', op: 'get', jobId, tenant: c.tenant, by: this.link!.site, task: 0, bytes: 1 })) as JobView;
      return { ...view, site: c.executor, homeSite: c.home, route: c.route };
    } catch (err) {
      const why = (err as Error).message;
      return this.claimView(c, 'pending', `${c.state} to ${c.executor}, which does not answer now (${why})`);
    }
  }

  /** Cancels a job routed away: before it started, the claim is cancelled here (it can then never start); after, at the site running it. */
  async remoteCancel(jobId: string, principal: Principal): Promise<{ id: string; state: JobState } | undefined> {
    const held = await this.claimOf(jobId, principal);
    if (!held) return undefined;
    const c = held.value;
    if (c.state === 'cancelled') throw new QY_ERR_JOB_FINISHED(jobId, 'cancelled');
    const ask = { type: 'job' as const, op: 'cancel' as const, jobId, tenant: c.tenant, by: this.link!.site, task: 0, bytes: 1 };
    if (c.state === 'offered' && (await this.link!.claims.replace({ ...c, state: 'cancelled' }, held.revision))) {
      await this.local.audited(principal, { action: 'job.cancel', target: jobId, details: { tenant: c.tenant, site: c.executor, started: false } });
      // The executor may hold it in its queue: told to drop it (its start would be refused by the claim anyway).
      await this.link!.question(c.executor, ask).catch(() => undefined);
      return { id: jobId, state: 'cancelled' };
    }
    if (c.state === 'offered') return this.remoteCancel(jobId, principal); // the claim moved meanwhile: look again
    const answer = (await this.link!.question(c.executor, ask)) as { id: string; state: JobState };
    await this.local.audited(principal, { action: 'job.cancel', target: jobId, details: { tenant: c.tenant, site: c.executor, started: true } });
    return answer;
  }

  /** The tail of a task's output of a job routed away, from the site running it. */
  async remoteLog(jobId: string, principal: Principal, task: number, bytes: number): Promise<JobLogTail | undefined> {
    const held = await this.claimOf(jobId, principal);
    if (!held) return undefined;
    return (await this.link!.question(held.value.executor, { type: 'job', op: 'log', jobId, tenant: held.value.tenant, by: this.link!.site, task, bytes })) as JobLogTail;
  }

  /** A job's usage, when it was routed away: metered (under its tenant) where it ran, and asked of that site. */
  async remoteUsage(filter: UsageQuery, principal: Principal): Promise<(UsageSummary & { period: string; interval: string }) | undefined> {
    if (filter.jobId === undefined) return undefined;
    const held = await this.claimOf(filter.jobId, principal);
    if (!held || held.value.state === 'cancelled') return undefined;
    return (await this.link!.question(held.value.executor, { type: 'job', op: 'usage', jobId: filter.jobId, tenant: held.value.tenant, by: this.link!.site, task: 0, bytes: 1, period: filter.period })) as UsageSummary & { period: string; interval: string };
  }

  private claimView(c: Claim, state: JobState, pendingReason: string | undefined): JobView {
    return {
      id: c.jobId,
      name: c.spec.name,
      tenant: c.tenant,
      pool: c.spec.pool,
      priorityClass: c.spec.priorityClass,
      dataClass: c.spec.dataClass,
      state,
      tasks: c.spec.tasks,
      resources: c.spec.resources,
      attempts: 0,
      maxAttempts: this.s.config.maxAttempts,
      pendingReason,
      submittedAt: iso(c.submittedAtMs),
      history: [],
      site: c.executor,
      homeSite: c.home,
      route: c.route,
    };
  }

  /** The port through which the federation link reaches this site's state and operations. */
  host(): FederationHost {
    const s = this.s;
    const local = this.local;
    const tenantPrincipal = (tenant: string, via?: string): Principal => {
      const config = s.tenants.tenant(tenant);
      if (!config) throw new QY_ERR_FORBIDDEN(`tenant ${tenant} is not known at site ${s.config.site}`);
      return { kind: 'tenant', name: tenant, tenant: config, via };
    };
    return {
      get ready() {
        return s.ready;
      },
      leads: (pool) => s.leadership.leads(pool),
      summary: (nowMs) => siteSummaryOf(s.config.site!, s.store, s.registry, nowMs),
      hasJob: (jobId) => s.store.table.get(jobId) !== undefined,
      acceptForwarded: async (req) => {
        tenantPrincipal(req.tenant);
        if (s.store.table.get(req.jobId)) return;
        await local.storeJob(req.spec, req.tenant, undefined, { id: req.jobId, homeSite: req.home, route: req.route, submittedAtMs: req.submittedAtMs });
        await local.audited({ kind: 'system', name: `site:${req.home}` }, { action: 'job.accept', target: req.jobId, details: { tenant: req.tenant, home: req.home } });
      },
      runHere: async (claim) => {
        if (s.store.table.get(claim.jobId)) return;
        await local.storeJob(claim.spec, claim.tenant, undefined, { id: claim.jobId, route: claim.route, submittedAtMs: claim.submittedAtMs });
      },
      localJob: async (jobId, tenant) => {
        const view = await local.getJob(jobId, tenantPrincipal(tenant));
        return view;
      },
      cancelLocal: (jobId, tenant, via) => local.cancel(jobId, tenantPrincipal(tenant, via)),
      logLocal: (jobId, tenant, task, bytes) => local.jobLog(jobId, tenantPrincipal(tenant), task, bytes),
      usageLocal: (jobId, tenant, period) => local.usage({ period, jobId }, tenantPrincipal(tenant)),
      giveBack: (jobId, reason) => {
        const job = s.store.table.get(jobId);
        if (!job || job.cancelRequested) return;
        s.store.commit({ type: 'cancel-requested', jobId, reason, atMs: s.clock.now() });
      },
    };
  }
}

/** Whether an error is "job not found" (then a job routed away may answer instead). */
export function isJobNotFound(err: unknown): boolean {
  return err instanceof QY_ERR_JOB_NOT_FOUND;
}

