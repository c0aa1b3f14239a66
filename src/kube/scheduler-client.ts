import { errorBodySchema, jobViewSchema, nodeViewSchema, submitResponseSchema, type JobSpecInput, type JobView, type NodeView } from '../protocol';

/** An error answer of the scheduler's API, with its stable code. */
export class SchedulerApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The scheduler's HTTP API as the bridge uses it: as an operator allowed to act as tenants, it submits,
 * reads and cancels jobs as the pods' tenants (X-Qy-Act-As), and cordons nodes as itself. A write refused
 * by a replica that does not lead the pool is sent once to the leader it names (X-Qy-Leader).
 */
export class SchedulerClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** Submits a job as `tenant`; the same idempotency key always answers with the same job. */
  async submit(tenant: string, spec: JobSpecInput, idempotencyKey: string): Promise<{ id: string; state: string; replayed: boolean }> {
    const res = await this.request('POST', '/v1/jobs', { tenant, body: spec, headers: { 'idempotency-key': idempotencyKey } });
    return { ...submitResponseSchema.parse(res.body), replayed: res.headers.get('idempotent-replayed') === 'true' };
  }

  async job(tenant: string, id: string): Promise<JobView> {
    return jobViewSchema.parse((await this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`, { tenant })).body);
  }

  async cancel(tenant: string, id: string): Promise<void> {
    await this.request('DELETE', `/v1/jobs/${encodeURIComponent(id)}`, { tenant });
  }

  async node(id: string): Promise<NodeView> {
    return nodeViewSchema.parse((await this.request('GET', `/v1/nodes/${encodeURIComponent(id)}`)).body);
  }

  async cordon(id: string, cordoned: boolean): Promise<void> {
    await this.request('POST', `/v1/nodes/${encodeURIComponent(id)}/${cordoned ? 'cordon' : 'uncordon'}`);
  }

  private async request(method: string, path: string, options: { tenant?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ body: unknown; headers: Headers }> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...options.headers };
    if (options.tenant) headers['x-qy-act-as'] = options.tenant;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const send = async (baseUrl: string): Promise<Response> => {
      try {
        return await fetch(`${baseUrl}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        throw new SchedulerApiError(0, 'QY_ERR_UNREACHABLE', `scheduler unreachable: ${(err as Error).message}`);
      }
    };
    let res = await send(this.baseUrl);
    // With several scheduler replicas, a pool's writes go to its leader, which a standby names.
    const leader = res.status === 503 ? res.headers.get('x-qy-leader') : null;
    if (leader && leader !== this.baseUrl) {
      await res.body?.cancel();
      res = await send(leader);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    if (!res.ok) {
      const error = errorBodySchema.safeParse(body);
      throw new SchedulerApiError(res.status, error.success ? error.data.code : 'QY_ERR_UNKNOWN', error.success ? error.data.message : `${method} ${path}: HTTP ${res.status}`);
    }
    return { body, headers: res.headers };
  }
}

