import { waitUntil } from '../../src/local/wait';
import type { JobSpecInput, JobState, JobView } from '../../src/protocol';

/** A response as tests look at it. */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small client of the scheduler's HTTP API for tests. */
export class ApiClient {
  /** `token` is sent as a bearer token on every request unless a request sets its own authorization. */
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  /** The same server, as another caller. */
  as(token: string | undefined): ApiClient {
    return new ApiClient(this.baseUrl, token);
  }

  async request<T = unknown>(method: string, path: string, options: { body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
    const hasBody = options.body !== undefined || options.rawBody !== undefined;
    const auth: Record<string, string> = this.token ? { authorization: `Bearer ${this.token}` } : {};
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...auth, ...options.headers },
      body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: body as T, headers: res.headers };
  }

  /** Submits a job; throws unless it was accepted. */
  async submit(spec: JobSpecInput, idempotencyKey?: string): Promise<string> {
    const res = await this.request<{ id: string }>('POST', '/v1/jobs', { body: spec, headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {} });
    if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  }

  async job(id: string): Promise<JobView> {
    const res = await this.request<JobView>('GET', `/v1/jobs/${id}`);
    if (res.status !== 200) throw new Error(`get ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Polls a job until it is in one of `states`; throws with its last view after `timeoutMs`. */
  async waitFor(id: string, states: JobState[], timeoutMs = 20_000): Promise<JobView> {
    return waitUntil(async () => {
      const job = await this.job(id);
      return states.includes(job.state) ? job : undefined;
    }, timeoutMs, async () => `job ${id} did not reach ${states.join('/')}: ${JSON.stringify(await this.job(id).catch((e) => String(e)))}`);
  }
}

export { waitUntil } from '../../src/local/wait';
