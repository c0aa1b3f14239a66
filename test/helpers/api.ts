import { SchedulerClient, type SendOptions } from '../../src/client';
import { waitUntil } from '../../harness/wait';
import type { JobSpecInput, JobState, JobView } from '../../src/protocol';

/** A response as tests look at it. */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** One SchedulerClient (one connection pool) per scheduler a test file talks to, shared by every caller. */
const clients = new Map<string, SchedulerClient>();

/**
 * The scheduler's API as tests call it: SchedulerClient, pinned to one replica (a test sees a standby's
 * answers as they are), as the caller whose token it holds.
 */
export class ApiClient {
  private readonly client: SchedulerClient;

  /** `token` is sent as a bearer token on every request unless a request sets its own authorization. */
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {
    this.client = clients.get(baseUrl) ?? new SchedulerClient({ url: baseUrl });
    clients.set(baseUrl, this.client);
  }

  /** The same server, as another caller. */
  as(token: string | undefined): ApiClient {
    return new ApiClient(this.baseUrl, token);
  }

  /** Any request; resolves with its answer whatever the status. */
  async request<T = unknown>(method: string, path: string, options: Pick<SendOptions, 'body' | 'rawBody' | 'headers'> = {}): Promise<ApiResponse<T>> {
    const { status, body, headers } = await this.client.send<T>(method, path, { ...options, ...this.caller() });
    return { status, body, headers };
  }

  /** Submits a job; throws unless it was accepted. */
  async submit(spec: JobSpecInput, idempotencyKey?: string): Promise<string> {
    return (await this.client.submit(spec, { idempotencyKey, ...this.caller() })).id;
  }

  async job(id: string): Promise<JobView> {
    return this.client.job(id, this.caller());
  }

  /** Polls a job until it is in one of `states`; throws with its last view after `timeoutMs`. */
  async waitFor(id: string, states: JobState[], timeoutMs = 20_000): Promise<JobView> {
    return waitUntil(async () => {
      const job = await this.job(id);
      return states.includes(job.state) ? job : undefined;
    }, timeoutMs, async () => `job ${id} did not reach ${states.join('/')}: ${JSON.stringify(await this.job(id).catch((e) => String(e)))}`);
  }

  private caller(): { token: string | null; url: string } {
    return { token: this.token ?? null, url: this.baseUrl };
  }
}

export { waitUntil } from '../../harness/wait';
