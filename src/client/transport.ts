import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import { CLIENT_ERROR_CODES, errorBodySchema, HEADERS } from '../protocol';

/**
 * How the client sends a request: to the replica it believes leads, following a standby's `X-Qy-Leader`
 * once, and trying again with backoff when no replica answered or one answered 503 — the one policy every
 * caller of the API (qy, the Kubernetes bridge, the load tools, the tests) goes through.
 */

/** An error answer of the scheduler's API with its stable code, or the client's own when nothing answered. */
export class SchedulerApiError extends Error {
  constructor(
    /** The HTTP status; 0 when no replica answered. */
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: { url?: string; responseText?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = 'SchedulerApiError';
  }
}

/** When to try a request again. Only requests safe to repeat are retried (see SendOptions.idempotent). */
export interface RetryPolicy {
  /** Tries in all (1: never again). */
  attempts: number;
  /** The wait before the second try; it doubles after each try up to `maxDelayMs`, half of it jittered. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** No try starts later than this after the first; 0 for no limit but `attempts`. */
  deadlineMs: number;
}

/** The default: one try (a caller that measures, or retries itself, sees every answer). */
export const NO_RETRY: RetryPolicy = { attempts: 1, initialDelayMs: 100, maxDelayMs: 2_000, deadlineMs: 0 };

/** An answer as it came: status, headers, the body parsed when it is JSON (else its text). */
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
  /** The replica that answered. */
  url: string;
}

export interface SendOptions {
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is (malformed bodies in tests); with `headers` for its content type. */
  rawBody?: string;
  headers?: Record<string, string>;
  /** Who calls, instead of the client's token; null sends no token. */
  token?: string | null;
  /** An operator allowed to act as tenants (a bridge) acts as this one. */
  actAs?: string;
  idempotencyKey?: string;
  /** Send to this replica only: no leader to follow, no other replica to try. */
  url?: string;
  retry?: Partial<RetryPolicy>;
  /** Whether repeating the request is harmless; by default every method but POST, and a POST with an idempotency key. */
  idempotent?: boolean;
}

export interface TransportOptions {
  /** One replica's URL, or several: a request goes to the one believed to lead, the others when it does not answer. */
  url: string | readonly string[];
  token?: string;
  /** A request not answered within this is a failed try. Default 10 s. */
  timeoutMs?: number;
  /** HTTP connections per replica (undici Pool). Default 16. */
  connections?: number;
  retry?: Partial<RetryPolicy>;
  /** Told when a standby sends a request on to the leader it names. */
  onRedirect?: (from: string, to: string) => void;
}

/** Counts of what the policy did, for callers that report them (the failover scenario). */
export interface TransportStats {
  retries: number;
  redirects: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECTIONS = 16;

/** The transport of SchedulerClient: one undici Agent, the replicas it knows and which it believes leads. */
export class Transport {
  readonly stats: TransportStats = { retries: 0, redirects: 0 };
  private readonly replicas: string[];
  private current: string;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly targets = new Map<string, { origin: string; prefix: string }>();

  constructor(private readonly options: TransportOptions) {
    const urls = (typeof options.url === 'string' ? [options.url] : [...options.url]).map(trimSlash);
    if (urls.length === 0) throw new TypeError('the scheduler client needs at least one URL');
    this.replicas = [...new Set(urls)];
    this.current = this.replicas[0];
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = { ...NO_RETRY, ...options.retry };
    this.dispatcher = new Agent({ connections: options.connections ?? DEFAULT_CONNECTIONS, pipelining: 1, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
  }

  /** The replica requests go to first. */
  get url(): string {
    return this.current;
  }

  /**
   * Sends a request and resolves with whatever status it was answered with. A 503 naming a leader other than
   * the replica asked is sent there at once (once per try), and that leader is asked first from then on. A
   * try nobody answered moves on to the next known replica. Unanswered tries and 503s are tried again as the
   * retry policy allows; throws QY_ERR_UNREACHABLE when the last try got no answer.
   */
  async send<T = unknown>(method: string, path: string, options: SendOptions = {}): Promise<ApiResponse<T>> {
    const policy = { ...this.retry, ...options.retry };
    const repeatable = options.idempotent ?? (method !== 'POST' || options.idempotencyKey !== undefined);
    const tries = repeatable ? policy.attempts : 1;
    const request = this.requestOf(method, path, options);
    const firstMs = Date.now();
    for (let attempt = 1; ; attempt++) {
      const asked = options.url === undefined ? this.current : trimSlash(options.url);
      let answer = await this.once<T>(asked, request);
      const leader = answer instanceof Error || answer.status !== 503 ? null : answer.headers.get(HEADERS.leader);
      if (options.url === undefined && leader && trimSlash(leader) !== asked) {
        this.stats.redirects++;
        this.options.onRedirect?.(asked, leader);
        this.follow(trimSlash(leader));
        answer = await this.once<T>(this.current, request);
      }
      if (answer instanceof Error && options.url === undefined) this.moveOn(answer.url);
      const again = answer instanceof Error || answer.status === 503;
      const late = policy.deadlineMs > 0 && Date.now() - firstMs >= policy.deadlineMs;
      if (!again || attempt >= tries || late) {
        if (answer instanceof Error) throw new SchedulerApiError(0, CLIENT_ERROR_CODES.unreachable, `scheduler unreachable: ${answer.message}`, { url: answer.url, cause: answer.cause });
        return answer;
      }
      this.stats.retries++;
      await sleep(backoffMs(policy, attempt));
    }
  }

  /** Sends a request and returns its answer when it is a success; throws SchedulerApiError with the API's code otherwise. */
  async call<T = unknown>(method: string, path: string, options: SendOptions = {}): Promise<ApiResponse<T>> {
    const res = await this.send<T>(method, path, options);
    if (res.status >= 200 && res.status < 300) return res;
    const error = errorBodySchema.safeParse(res.body);
    if (error.success) throw new SchedulerApiError(res.status, error.data.code, error.data.message, { url: res.url, responseText: res.text });
    throw new SchedulerApiError(res.status, CLIENT_ERROR_CODES.unknown, `${method} ${path}: HTTP ${res.status}`, { url: res.url, responseText: res.text });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private requestOf(method: string, path: string, options: SendOptions): { method: Dispatcher.HttpMethod; path: string; headers: Record<string, string>; body?: string } {
    const token = options.token === undefined ? this.options.token : options.token;
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers: Record<string, string> = {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(options.actAs ? { [HEADERS.actAs]: options.actAs } : {}),
      ...(options.idempotencyKey ? { [HEADERS.idempotencyKey]: options.idempotencyKey } : {}),
      ...options.headers,
    };
    return { method: method as Dispatcher.HttpMethod, path, headers, body };
  }

  /** One request to one replica: its answer, or the error that stood for one. */
  private async once<T>(base: string, request: ReturnType<Transport['requestOf']>): Promise<ApiResponse<T> | Unanswered> {
    const { origin, prefix } = this.target(base);
    try {
      const res = await this.dispatcher.request({ origin, path: `${prefix}${request.path}`, method: request.method, headers: request.headers, body: request.body });
      const text = await res.body.text();
      const raw = res.headers;
      let headers: Headers | undefined;
      return {
        status: res.statusCode,
        // Built when first asked for: a load generator reads only the status and the body.
        get headers() {
          headers ??= toHeaders(raw);
          return headers;
        },
        body: parseBody(text) as T,
        text,
        url: base,
      };
    } catch (err) {
      return new Unanswered(base, err);
    }
  }

  /** Origin and path prefix of a replica's URL, parsed once. */
  private target(base: string): { origin: string; prefix: string } {
    let t = this.targets.get(base);
    if (!t) {
      const url = new URL(base);
      t = { origin: url.origin, prefix: url.pathname === '/' ? '' : url.pathname };
      this.targets.set(base, t);
    }
    return t;
  }

  /** A standby named the leader: ask it first from now on. */
  private follow(leader: string): void {
    if (!this.replicas.includes(leader)) this.replicas.push(leader);
    this.current = leader;
  }

  /** `failed` did not answer: the next known replica is asked first from now on. */
  private moveOn(failed: string): void {
    if (this.current !== failed) return;
    this.current = this.replicas[(this.replicas.indexOf(failed) + 1) % this.replicas.length];
  }
}

/** A try without an answer; `code` is undici's or the system's (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, …). */
class Unanswered extends Error {
  readonly code: string;
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    const e = cause as { code?: string; name?: string; message?: string };
    super(e?.message ?? String(cause), { cause });
    this.code = e?.code ?? e?.name ?? 'error';
  }
}

/** The wait after failed try `attempt`: doubling from the initial delay, capped, the upper half random so retries spread out. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const full = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  return full / 2 + Math.random() * (full / 2);
}

function toHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}
