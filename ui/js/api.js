// The console's one way to the scheduler: the public /v1 API with the signed-in token as a bearer token.
// The token lives in sessionStorage (this tab only, gone when it closes) and never in a URL.

const TOKEN_KEY = 'qy-token';

/** The signed-in token, kept for this browser tab only. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An error answer of the API: its HTTP status and stable QY_ERR_* code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the API. `accept`: 'json' (default), 'text' or 'blob'. A 401 means the token no longer works:
 * the session ends and the console goes back to sign-in.
 */
export async function api(path, { method = 'GET', body, accept = 'json', token = session.token } = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', err.message);
  }
  if (!res.ok) {
    let answer = {};
    try {
      answer = await res.json();
    } catch {
      // not JSON: keep the status
    }
    if (res.status === 401 && token === session.token && session.token) {
      session.clear();
      window.dispatchEvent(new Event('qy-signed-out'));
    }
    throw new ApiError(res.status, answer.code ?? `HTTP_${res.status}`, answer.message ?? res.statusText);
  }
  if (accept === 'text') return res.text();
  if (accept === 'blob') return res.blob();
  return res.json();
}

/** A query string of the parameters that are set (`?a=1&b=2`, or empty). */
export function query(params) {
  const set = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return set.length ? `?${new URLSearchParams(set)}` : '';
}

/**
 * The cursor that starts a job list at a time: job ids begin with their submission time in base 36 (9
 * characters) and sort in submission order, which the API's paging relies on, so every job submitted at or
 * after `sinceMs` sorts after this prefix.
 */
export function cursorAt(sinceMs) {
  return `j${Math.max(0, Math.floor(sinceMs)).toString(36).padStart(9, '0')}`;
}

/**
 * The jobs matching the filter and submitted since `sinceMs` (all when undefined), newest first, reading pages
 * of 1,000 up to `maxJobs` (the API lists oldest first; `truncated` says the newest were not reached).
 */
export async function listJobs(filter, sinceMs, maxJobs = 5_000) {
  const items = [];
  let cursor = sinceMs === undefined ? undefined : cursorAt(sinceMs);
  do {
    const page = await api(`/v1/jobs${query({ ...filter, limit: 1000, cursor })}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < maxJobs);
  return { items: items.reverse(), truncated: Boolean(cursor) };
}

/** Saves a response body as a file: fetched with the token in a header, handed to the browser as a blob. */
export async function download(path, filename) {
  const blob = await api(path, { accept: 'blob' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
