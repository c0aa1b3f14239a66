import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A Kubernetes object as the fake stores it (plain JSON, shaped per the core/v1 OpenAPI). */
export type KObject = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

type Kind = 'Node' | 'Pod' | 'Namespace' | 'Event';
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A request the fake answered, for tests to assert on. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  contentType?: string;
}

const LIST_KINDS: Record<string, Kind> = { '/api/v1/nodes': 'Node', '/api/v1/pods': 'Pod', '/api/v1/namespaces': 'Namespace' };

/**
 * A small Kubernetes API server for contract tests: exactly the calls the bridge makes (list and watch of
 * nodes, pods and namespaces with resource versions and bookmarks, 410 Gone for a compacted resource
 * version, pod binding, pod status patch, event creation, pod deletion), with one global resourceVersion
 * like etcd's. Helpers change objects as controllers and the kubelet would.
 */
export class FakeApiServer {
  private server!: Server;
  private rv = 1;
  private uidSeq = 0;
  /** Watches with a resource version below this are answered with an ERROR event carrying 410 Gone. */
  private compactedRv = 0;
  private readonly objects = new Map<string, KObject>();
  private readonly history: { rv: number; kind: Kind; type: EventType; object: KObject }[] = [];
  private readonly watchers = new Set<{ kind: Kind; res: ServerResponse; bookmarks: boolean }>();
  private readonly bindFailures = new Map<string, { status: number; remaining: number }>();
  /** Output of each pod container, by `namespace/pod/container`. */
  private readonly podLogs = new Map<string, string>();
  readonly requests: RecordedRequest[] = [];
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  // ---- Helpers for tests ---------------------------------------------------------------------------

  get(kind: Kind, name: string, namespace?: string): KObject | undefined {
    const o = this.objects.get(key(kind, name, namespace));
    return o && structuredClone(o);
  }

  list(kind: Kind, namespace?: string): KObject[] {
    return [...this.objects.entries()].filter(([k, o]) => k.startsWith(`${kind}/`) && (namespace === undefined || o.metadata.namespace === namespace)).map(([, o]) => structuredClone(o));
  }

  /** Creates or replaces an object (ADDED or MODIFIED), giving it a uid and the next resource version. */
  put(kind: Kind, object: KObject): KObject {
    const k = key(kind, object.metadata.name, object.metadata.namespace);
    const existing = this.objects.get(k);
    const stored: KObject = structuredClone({ apiVersion: 'v1', kind, ...object });
    stored.metadata.uid = existing?.metadata.uid ?? object.metadata.uid ?? `uid-${++this.uidSeq}-${object.metadata.name}`;
    stored.metadata.creationTimestamp ??= new Date().toISOString();
    stored.metadata.resourceVersion = String(++this.rv);
    this.objects.set(k, stored);
    this.emit(kind, existing ? 'MODIFIED' : 'ADDED', stored);
    return structuredClone(stored);
  }

  /** Changes an object in place (MODIFIED). */
  modify(kind: Kind, name: string, namespace: string | undefined, change: (o: KObject) => void): KObject {
    const o = this.get(kind, name, namespace);
    if (!o) throw new Error(`no ${kind} ${namespace ?? ''}/${name}`);
    change(o);
    return this.put(kind, o);
  }

  remove(kind: Kind, name: string, namespace?: string): boolean {
    const k = key(kind, name, namespace);
    const o = this.objects.get(k);
    if (!o) return false;
    this.objects.delete(k);
    o.metadata.resourceVersion = String(++this.rv);
    this.emit(kind, 'DELETED', o);
    return true;
  }

  /** The kubelet starts a bound pod. */
  runPod(namespace: string, name: string): void {
    this.modify('Pod', name, namespace, (p) => {
      (p.status as Record<string, unknown>).phase = 'Running';
      (p.status as Record<string, unknown>).containerStatuses = containersOf(p).map((c) => ({ name: c, ready: true, restartCount: 0, image: 'x', imageID: 'x', state: { running: { startedAt: new Date().toISOString() } } }));
    });
  }

  /** The kubelet sees the pod's containers exit with this code. */
  finishPod(namespace: string, name: string, exitCode: number): void {
    this.modify('Pod', name, namespace, (p) => {
      (p.status as Record<string, unknown>).phase = exitCode === 0 ? 'Succeeded' : 'Failed';
      (p.status as Record<string, unknown>).containerStatuses = containersOf(p).map((c) => ({ name: c, ready: false, restartCount: 0, image: 'x', imageID: 'x', state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } } }));
    });
  }

  /** The pod's container writes this output (what the kubelet would serve as its log). */
  writePodLog(namespace: string, name: string, container: string, text: string): void {
    const k = `${namespace}/${name}/${container}`;
    this.podLogs.set(k, (this.podLogs.get(k) ?? '') + text);
  }

  /** Bindings of this pod fail with `status`, `times` times. */
  failBinding(namespace: string, name: string, status: number, times = Infinity): void {
    this.bindFailures.set(`${namespace}/${name}`, { status, remaining: times });
  }

  /**
   * Ends every watch, makes `whileAway` changes nobody watches, then compacts history: the watchers'
   * reconnect with their old resource version gets 410 Gone and must relist to see the changes.
   */
  dropWatchesAndCompact(whileAway: () => void): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    whileAway();
    this.compactedRv = this.rv;
  }

  /** Sends every watch that asked for bookmarks a BOOKMARK at the current resource version; returns it. */
  sendBookmarks(): number {
    for (const w of this.watchers) {
      if (w.bookmarks) w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { apiVersion: 'v1', kind: w.kind, metadata: { resourceVersion: String(this.rv) } } })}\n`);
    }
    return this.rv;
  }

  /**
   * Ends every watch, compacts history up to now, then makes `whileAway` changes: a watcher that resumes
   * from the current resource version (a bookmark told it) sees them; one resuming from older gets 410.
   */
  dropWatchesCompactingFirst(whileAway: () => void): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    this.compactedRv = this.rv;
    whileAway();
  }

  events(namespace: string): KObject[] {
    return this.list('Event', namespace);
  }

  // ---- The API ---------------------------------------------------------------------------------------

  private emit(kind: Kind, type: EventType, object: KObject): void {
    this.history.push({ rv: Number(object.metadata.resourceVersion), kind, type, object: structuredClone(object) });
    for (const w of this.watchers) if (w.kind === kind) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      return status(res, 400, 'BadRequest', 'body is not JSON');
    }
    const query = Object.fromEntries(url.searchParams);
    const path = url.pathname;
    this.requests.push({ method: req.method ?? 'GET', path, query, body, contentType: req.headers['content-type'] });
    const listKind = LIST_KINDS[path];
    if (req.method === 'GET' && listKind) return query.watch === 'true' ? this.watch(listKind, query, res) : this.sendList(listKind, res);
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/(pods|events)(?:\/([^/]+))?(?:\/(binding|status|log))?$/.exec(path);
    if (!m) return status(res, 404, 'NotFound', `the server could not find the requested resource (${req.method} ${path})`);
    const [, ns, resource, name, sub] = m;
    if (resource === 'events' && req.method === 'POST' && !name) {
      const ev = body as KObject;
      const evName = ev.metadata.name ?? `${ev.metadata.generateName ?? 'event.'}${(++this.uidSeq).toString(36)}`;
      return json(res, 201, this.put('Event', { ...ev, metadata: { ...ev.metadata, name: evName, namespace: ns } }));
    }
    if (resource !== 'pods' || !name) return status(res, 405, 'MethodNotAllowed', `${req.method} ${path} is not served by the fake`);
    const pod = this.get('Pod', name, ns);
    if (!pod) return status(res, 404, 'NotFound', `pods "${name}" not found`);
    if (req.method === 'GET' && !sub) return json(res, 200, pod);
    if (req.method === 'DELETE' && !sub) {
      const uid = (body as { preconditions?: { uid?: string } } | undefined)?.preconditions?.uid;
      if (uid && uid !== pod.metadata.uid) return status(res, 409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`);
      this.remove('Pod', name, ns);
      return json(res, 200, pod);
    }
    if (req.method === 'GET' && sub === 'log') return this.podLog(pod, query, res);
    if (req.method === 'POST' && sub === 'binding') return this.bind(pod, body as KObject & { target?: { name?: string } }, res);
    if (req.method === 'PATCH' && sub === 'status') {
      if (req.headers['content-type'] !== 'application/merge-patch+json') return status(res, 415, 'UnsupportedMediaType', 'the fake takes JSON merge patches only');
      return json(res, 200, this.put('Pod', mergePatch(pod, body) as KObject));
    }
    return status(res, 405, 'MethodNotAllowed', `${req.method} ${path} is not served by the fake`);
  }

  /** pods/log as the API server serves it: plain text; `container` required when the pod has several; `tailLines`. */
  private podLog(pod: KObject, query: Record<string, string>, res: ServerResponse): void {
    const containers = containersOf(pod);
    const container = query.container ?? (containers.length === 1 ? containers[0] : undefined);
    if (!container) return status(res, 400, 'BadRequest', `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(' ')}]`);
    if (!containers.includes(container)) return status(res, 400, 'BadRequest', `container ${container} is not valid for pod ${pod.metadata.name}`);
    if (!(pod.spec as { nodeName?: string }).nodeName) return status(res, 400, 'BadRequest', `pod ${pod.metadata.name} is not bound to a node`);
    let lines = (this.podLogs.get(`${pod.metadata.namespace}/${pod.metadata.name}/${container}`) ?? '').split(/(?<=\n)/).filter((l) => l !== '');
    if (query.tailLines !== undefined) lines = lines.slice(Math.max(0, lines.length - Number(query.tailLines)));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(lines.join(''));
  }

  private bind(pod: KObject, binding: KObject & { target?: { name?: string } }, res: ServerResponse): void {
    const ns = pod.metadata.namespace!;
    const failure = this.bindFailures.get(`${ns}/${pod.metadata.name}`);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      return status(res, failure.status, failure.status >= 500 ? 'InternalError' : 'Forbidden', `binding of ${pod.metadata.name} refused by the test`);
    }
    const spec = pod.spec as Record<string, unknown>;
    if (spec.nodeName) return status(res, 409, 'Conflict', `Operation cannot be fulfilled on pods/binding "${pod.metadata.name}": pod ${pod.metadata.name} is already assigned to node "${spec.nodeName}"`);
    if (binding?.kind !== 'Binding' || !binding.target?.name) return status(res, 400, 'BadRequest', 'not a Binding with a target');
    this.modify('Pod', pod.metadata.name, ns, (p) => {
      (p.spec as Record<string, unknown>).nodeName = binding.target!.name;
      const st = (p.status ??= {}) as { conditions?: { type: string }[] };
      st.conditions = [...(st.conditions ?? []).filter((c) => c.type !== 'PodScheduled'), { type: 'PodScheduled', status: 'True' } as never];
    });
    return json(res, 201, { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Success', code: 201 });
  }

  private sendList(kind: Kind, res: ServerResponse): void {
    json(res, 200, { apiVersion: 'v1', kind: `${kind}List`, metadata: { resourceVersion: String(this.rv) }, items: this.list(kind) });
  }

  private watch(kind: Kind, query: Record<string, string>, res: ServerResponse): void {
    const from = Number(query.resourceVersion || this.rv);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // Clients (client-node's Watch) wait for the headers before reading events.
    res.flushHeaders();
    if (from < this.compactedRv) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { apiVersion: 'v1', kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${from} (${this.compactedRv})`, metadata: {} } })}\n`);
      return;
    }
    for (const e of this.history) if (e.kind === kind && e.rv > from) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    if (query.allowWatchBookmarks === 'true') res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { apiVersion: 'v1', kind, metadata: { resourceVersion: String(this.rv) } } })}\n`);
    const watcher = { kind, res, bookmarks: query.allowWatchBookmarks === 'true' };
    this.watchers.add(watcher);
    res.on('close', () => this.watchers.delete(watcher));
  }
}

function key(kind: Kind, name: string, namespace?: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

function containersOf(pod: KObject): string[] {
  return ((pod.spec as { containers?: { name: string }[] }).containers ?? []).map((c) => c.name);
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', reason, message, code });
}
