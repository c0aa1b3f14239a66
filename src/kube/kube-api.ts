import { CoreV1Api, KubeConfig, ListWatch, PatchStrategy, Watch, setHeaderOptions, type Informer, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '../telemetry/logger';
import type { KubePod } from './kube-types';

/** The component name on events and conditions. */
const REPORTING_COMPONENT = 'qingyang-scheduler';

/**
 * client-node's watch, asking for bookmarks (`allowWatchBookmarks`): the server then tells a quiet watch how
 * far the collection has moved, so a watch that breaks resumes from there instead of from an old resource
 * version the server may have compacted (410, and a full relist). client-node's ListWatch already takes the
 * resource version from BOOKMARK events; it just does not ask for them.
 */
class BookmarkingWatch extends Watch {
  override watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, done);
  }
}

/** An error of a Kubernetes API call with its HTTP status (0 when the request did not get an answer). */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** Worth retrying: the server was busy, failing or briefly in conflict. */
  get isTransient(): boolean {
    return this.status === 0 || this.status === 409 || this.status === 429 || this.status >= 500;
  }
}

/** Loads a kubeconfig: the given file, else in-cluster / ~/.kube/config. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** An informer with a cache: list + watch, relisting on 410 Gone, restarted after errors. */
export type CachedInformer<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/**
 * Every call the bridge makes to the Kubernetes API, through client-node (each one is granted in
 * KUBE_API_PERMISSIONS and configs/kubernetes/rbac.yaml).
 */
export class KubeApi {
  private readonly core: CoreV1Api;

  constructor(
    readonly kc: KubeConfig,
    private readonly log: Logger,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  nodeInformer(): CachedInformer<KubernetesObject> {
    return this.informer('/api/v1/nodes', () => this.core.listNode());
  }

  podInformer(): CachedInformer<KubernetesObject> {
    return this.informer('/api/v1/pods', () => this.core.listPodForAllNamespaces());
  }

  namespaceInformer(): CachedInformer<KubernetesObject> {
    return this.informer('/api/v1/namespaces', () => this.core.listNamespace());
  }

  /**
   * An informer that keeps going: client-node's stops after an error other than 410 (which it handles by
   * relisting), so it is started again after a pause.
   */
  private informer(path: string, list: () => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>): CachedInformer<KubernetesObject> {
    const informer = new ListWatch(path, new BookmarkingWatch(this.kc), list as never, false) as CachedInformer<KubernetesObject>;
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.log.warn({ path, err: errorMessage(err) }, 'watch failed; restarting');
      setTimeout(() => {
        if (!this.stopped) informer.start().catch(() => undefined);
      }, 1_000).unref();
    });
    return informer;
  }

  private stopped = false;
  /** Stops restarting informers (each informer is stopped by its owner). */
  stop(): void {
    this.stopped = true;
  }

  /** Binds a pod to a node (the Binding subresource, as kube-scheduler does). */
  async bind(namespace: string, name: string, nodeName: string): Promise<void> {
    await call(() =>
      this.core.createNamespacedPodBinding({
        namespace,
        name,
        body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
      }),
    );
  }

  /**
   * Sets the pod's PodScheduled condition with a JSON merge patch of its status. A merge patch replaces the
   * whole conditions list, so the pod's other conditions are sent along unchanged.
   */
  async setPodScheduledCondition(pod: KubePod, status: 'True' | 'False', reason: string, message: string): Promise<void> {
    const others = (pod.status.conditions ?? []).filter((c) => c.type !== 'PodScheduled');
    const condition = { type: 'PodScheduled', status, reason, message, lastTransitionTime: new Date().toISOString() };
    await call(() =>
      this.core.patchNamespacedPodStatus(
        { namespace: pod.metadata.namespace, name: pod.metadata.name, body: { status: { conditions: [...others, condition] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  /** Records a core/v1 Event on a pod, as kube-scheduler does (FailedScheduling, Scheduled). */
  async podEvent(pod: KubePod, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await call(() =>
      this.core.createNamespacedEvent({
        namespace: pod.metadata.namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${pod.metadata.name}.`, namespace: pod.metadata.namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
          type,
          reason,
          message: message.slice(0, 1024),
          action: 'Scheduling',
          reportingComponent: REPORTING_COMPONENT,
          reportingInstance: REPORTING_COMPONENT,
          source: { component: REPORTING_COMPONENT },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      }),
    );
  }

  /**
   * The last `tailLines` lines of a pod's container output (the pods/log subresource, as `kubectl logs
   * --tail` reads it). The API has no "last n bytes": the caller asks for enough lines and cuts.
   */
  async podLog(namespace: string, name: string, container: string, tailLines: number): Promise<string> {
    return call(() => this.core.readNamespacedPodLog({ namespace, name, container, tailLines }));
  }

  /** Deletes a pod (only the one with this UID); a pod already gone is not an error. */
  async deletePod(namespace: string, name: string, uid: string): Promise<void> {
    try {
      await call(() => this.core.deleteNamespacedPod({ namespace, name, body: { preconditions: uid ? { uid } : undefined } }));
    } catch (err) {
      if (err instanceof KubeApiError && (err.status === 404 || err.status === 409)) return;
      throw err;
    }
  }
}

/** Runs a client-node call, turning its errors into KubeApiError. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 0;
    throw new KubeApiError(status, `${status || 'no answer'}: ${errorMessage(err)}`, { cause: err });
  }
}

export function errorMessage(err: unknown): string {
  if (err && typeof err === 'object') {
    const body = (err as { body?: unknown }).body;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        // not JSON
      }
    }
    if (err instanceof Error) return err.message.split('\n')[0];
  }
  return String(err);
}
