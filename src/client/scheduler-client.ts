import { z } from 'zod';
import {
  HEADERS,
  auditRecordSchema,
  billSchema,
  datasetLineageSchema,
  datasetViewSchema,
  destroyConfirmationSchema,
  disclosureReportSchema,
  greenViewSchema,
  jobListSchema,
  jobLogSchema,
  jobViewSchema,
  nodeViewSchema,
  poolsResponseSchema,
  readinessSchema,
  submitResponseSchema,
  tenantViewSchema,
  usageReportSchema,
  usageTasksSchema,
  whoamiSchema,
  type AuditRecord,
  type Bill,
  type DatasetLineage,
  type DatasetRegister,
  type DatasetView,
  type DestroyConfirmation,
  type DisclosureReport,
  type GreenView,
  type JobSpecInput,
  type JobState,
  type JobView,
  type NodeView,
  type Pool,
  type PoolView,
  type Readiness,
  type ReadinessQuery,
  type TenantView,
  type UsageReport,
  type UsageTasks,
} from '../protocol';
import { Transport, type ApiResponse, type SendOptions, type TransportOptions, type TransportStats } from './transport';

/** Options of a typed call: act as a tenant (an operator allowed to), call with another token, or ask one replica only. */
export type CallOptions = Pick<SendOptions, 'actAs' | 'token' | 'url'>;

/** `GET /v1/jobs` filters; `since`/`until` are ISO 8601. */
export interface JobQuery {
  state?: JobState;
  pool?: Pool;
  tenant?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface AuditQuery {
  afterSeq?: number;
  limit?: number;
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
}

/** Where the scheduler is, the token, timeouts, connections and the retry policy. */
export type SchedulerClientOptions = TransportOptions;

/** A page of audit records the API gives at most; longer reads go page by page. */
const AUDIT_PAGE = 5000;
const nodeListSchema = z.object({ items: z.array(nodeViewSchema) });
const poolListSchema = poolsResponseSchema.pick({ items: true });
const tenantListSchema = z.object({ items: z.array(tenantViewSchema) });
const auditListSchema = z.object({ items: z.array(auditRecordSchema) });
const drainedSchema = nodeViewSchema.extend({ requeued: z.number().int() });

/**
 * The scheduler's HTTP API, typed by the protocol's schemas: every answer is checked against its schema, and
 * an error answer throws SchedulerApiError with the API's code. Requests go through one leader-following and
 * backoff policy (see Transport). `send` gives the raw answer, whatever its status, for callers that look at
 * statuses themselves.
 */
export class SchedulerClient {
  private readonly transport: Transport;

  constructor(options: SchedulerClientOptions) {
    this.transport = new Transport(options);
  }

  /** The replica requests go to first (the leader, once a standby has named it). */
  get url(): string {
    return this.transport.url;
  }

  get stats(): TransportStats {
    return this.transport.stats;
  }

  /** Any request; resolves with its answer whatever the status (throws only when no replica answered). */
  send<T = unknown>(method: string, path: string, options?: SendOptions): Promise<ApiResponse<T>> {
    return this.transport.send<T>(method, path, options);
  }

  /** Submits a job; the same idempotency key always answers with the same job (`replayed` then). */
  async submit(spec: JobSpecInput, options: CallOptions & { idempotencyKey?: string } = {}): Promise<{ id: string; state: JobState; replayed: boolean }> {
    const res = await this.transport.call('POST', '/v1/jobs', { ...options, body: spec });
    return { ...submitResponseSchema.parse(res.body), replayed: res.headers.get(HEADERS.idempotentReplayed) === 'true' };
  }

  async job(id: string, options: CallOptions = {}): Promise<JobView> {
    return this.get(jobViewSchema, `/v1/jobs/${encodeURIComponent(id)}`, options);
  }

  /** One page of jobs in submission order; `nextCursor` continues it. */
  async listJobs(query: JobQuery = {}, options: CallOptions = {}): Promise<{ items: JobView[]; nextCursor?: string }> {
    return this.get(jobListSchema, `/v1/jobs${queryString(query)}`, options);
  }

  /** Every page of jobs matching `query`, following the cursor to the end. */
  async *jobPages(query: JobQuery = {}, options: CallOptions = {}): AsyncGenerator<JobView[]> {
    let cursor = query.cursor;
    do {
      const page = await this.listJobs({ ...query, cursor }, options);
      yield page.items;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** Cancels a job: a pending one leaves the queue, a running one is stopped. */
  async cancel(id: string, options: CallOptions = {}): Promise<{ id: string; state: JobState }> {
    return submitResponseSchema.parse((await this.transport.call('DELETE', `/v1/jobs/${encodeURIComponent(id)}`, options)).body);
  }

  /** The tail of a task's output, from its agent. */
  async jobLog(id: string, query: { task?: number; bytes?: number } = {}, options: CallOptions = {}): Promise<z.infer<typeof jobLogSchema>> {
    return this.get(jobLogSchema, `/v1/jobs/${encodeURIComponent(id)}/log${queryString(query)}`, options);
  }

  /** Registers a dataset (name, site, size, classification, content hash) for the calling tenant. */
  async registerDataset(body: DatasetRegister, options: CallOptions = {}): Promise<DatasetView> {
    return datasetViewSchema.parse((await this.transport.call('POST', '/v1/datasets', { ...options, body })).body);
  }

  async dataset(id: string, options: CallOptions = {}): Promise<DatasetView> {
    return this.get(datasetViewSchema, `/v1/datasets/${encodeURIComponent(id)}`, options);
  }

  /** The jobs that read or wrote a dataset, and where they ran. */
  async datasetLineage(id: string, options: CallOptions = {}): Promise<DatasetLineage> {
    return this.get(datasetLineageSchema, `/v1/datasets/${encodeURIComponent(id)}/lineage`, options);
  }

  /** Records a dataset's destruction; the answer is the confirmation (who, when, content hash). */
  async destroyDataset(id: string, options: CallOptions = {}): Promise<DestroyConfirmation> {
    return destroyConfirmationSchema.parse((await this.transport.call('POST', `/v1/datasets/${encodeURIComponent(id)}/destroy`, options)).body);
  }

  async nodes(options: CallOptions = {}): Promise<NodeView[]> {
    return (await this.get(nodeListSchema, '/v1/nodes', options)).items;
  }

  async node(id: string, options: CallOptions = {}): Promise<NodeView> {
    return this.get(nodeViewSchema, `/v1/nodes/${encodeURIComponent(id)}`, options);
  }

  /** Cordons (no new work) or uncordons a node (operators). */
  async cordon(id: string, cordoned = true, options: CallOptions = {}): Promise<NodeView> {
    const res = await this.transport.call('POST', `/v1/nodes/${encodeURIComponent(id)}/${cordoned ? 'cordon' : 'uncordon'}`, { ...options, idempotent: true });
    return nodeViewSchema.parse(res.body);
  }

  /** Cordons a node and lets its jobs finish, or requeues them now (operators). */
  async drain(id: string, requeue: boolean, options: CallOptions = {}): Promise<NodeView & { requeued: number }> {
    const res = await this.transport.call('POST', `/v1/nodes/${encodeURIComponent(id)}/drain`, { ...options, body: { requeue }, idempotent: true });
    return drainedSchema.parse(res.body);
  }

  /** Removes a down node with nothing placed on it (operators); answers with the node as it was. */
  async removeNode(id: string, options: CallOptions = {}): Promise<NodeView> {
    const res = await this.transport.call('DELETE', `/v1/nodes/${encodeURIComponent(id)}`, { ...options, idempotent: true });
    return nodeViewSchema.parse(res.body);
  }

  async pools(options: CallOptions = {}): Promise<PoolView[]> {
    return (await this.get(poolListSchema, '/v1/pools', options)).items;
  }

  /** The green signal now and ahead, the forecaster's recent errors, power per pool and the jobs held for greener power (a tenant: its own). */
  async green(query: { hours?: number } = {}, options: CallOptions = {}): Promise<GreenView> {
    return this.get(greenViewSchema, `/v1/green${query.hours === undefined ? '' : `?hours=${query.hours}`}`, options);
  }

  /** Tenants with their quotas and use (operators: all; a tenant: itself). */
  async tenants(options: CallOptions = {}): Promise<TenantView[]> {
    return (await this.get(tenantListSchema, '/v1/tenants', options)).items;
  }

  async tenant(name: string, options: CallOptions = {}): Promise<TenantView> {
    return this.get(tenantViewSchema, `/v1/tenants/${encodeURIComponent(name)}`, options);
  }

  /** Replaces a tenant's quotas, per pool (operators). */
  async setQuotas(name: string, quotas: Record<string, unknown>, options: CallOptions = {}): Promise<TenantView> {
    return tenantViewSchema.parse((await this.transport.call('PUT', `/v1/tenants/${encodeURIComponent(name)}/quotas`, { ...options, body: quotas })).body);
  }

  async whoami(options: CallOptions = {}): Promise<z.infer<typeof whoamiSchema>> {
    return this.get(whoamiSchema, '/v1/whoami', options);
  }

  /** Metered usage of a month or day (a tenant sees its own). */
  async usage(query: { period: string; tenant?: string; pool?: Pool; jobId?: string }, options: CallOptions = {}): Promise<UsageReport> {
    return this.get(usageReportSchema, `/v1/usage${queryString(query)}`, options);
  }

  /** Metered usage per task of an attempt in a period: the records `usage` sums. */
  async usageTasks(query: { period: string; tenant?: string; pool?: Pool; jobId?: string }, options: CallOptions = {}): Promise<UsageTasks> {
    return this.get(usageTasksSchema, `/v1/usage/tasks${queryString(query)}`, options);
  }

  async bill(tenant: string, period: string, options: CallOptions = {}): Promise<Bill> {
    return this.get(billSchema, billPath(tenant, period), options);
  }

  /** The bill as CSV, as the API renders it. */
  async billCsv(tenant: string, period: string, options: CallOptions = {}): Promise<string> {
    return (await this.transport.call('GET', `${billPath(tenant, period)}?format=csv`, options)).text;
  }

  async disclosure(period: string, options: CallOptions = {}): Promise<DisclosureReport> {
    return this.get(disclosureReportSchema, `/v1/disclosure/${encodeURIComponent(period)}`, options);
  }

  /** The disclosure report as Markdown, for publication. */
  async disclosureMarkdown(period: string, options: CallOptions = {}): Promise<string> {
    return (await this.transport.call('GET', `/v1/disclosure/${encodeURIComponent(period)}?format=md`, options)).text;
  }

  /** One page of audit records, oldest first (operators). */
  async auditRecords(query: AuditQuery = {}, options: CallOptions = {}): Promise<AuditRecord[]> {
    return (await this.get(auditListSchema, `/v1/audit${queryString(query)}`, options)).items;
  }

  /** Every audit record matching the filter, page by page. */
  async allAuditRecords(query: Omit<AuditQuery, 'afterSeq' | 'limit'> = {}, options: CallOptions = {}): Promise<AuditRecord[]> {
    const records: AuditRecord[] = [];
    for (;;) {
      const page = await this.auditRecords({ ...query, limit: AUDIT_PAGE, afterSeq: records.at(-1)?.seq }, options);
      records.push(...page);
      if (page.length < AUDIT_PAGE) return records;
    }
  }

  /** A replica's readiness, whether it answered 200 or 503 (the body says which: `ready`). */
  async readiness(query: ReadinessQuery = {}, options: Pick<CallOptions, 'url'> = {}): Promise<Readiness> {
    const res = await this.transport.send('GET', `/readyz${queryString(query)}`, { ...options, token: null });
    return readinessSchema.parse(res.body);
  }

  /** Ready nodes over every pool, as the pools report them. */
  async readyNodes(options: CallOptions = {}): Promise<number> {
    return (await this.pools(options)).reduce((n, p) => n + (p.nodes.ready ?? 0), 0);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private async get<S extends z.ZodType>(schema: S, path: string, options: CallOptions): Promise<z.infer<S>> {
    return schema.parse((await this.transport.call('GET', path, options)).body);
  }
}

function billPath(tenant: string, period: string): string {
  return `/v1/bills/${encodeURIComponent(tenant)}/${encodeURIComponent(period)}`;
}

/** `?a=1&b=x` of the defined values, or nothing. */
function queryString(query: object): string {
  const entries = Object.entries(query).filter(([, v]) => v !== undefined && v !== null) as [string, string | number | boolean][];
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)]))}`;
}
