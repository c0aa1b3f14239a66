import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer, type KObject, type RecordedRequest } from './fake-apiserver';

/**
 * What the bridge tests need of a Kubernetes cluster: the fake API server (default) or a real cluster
 * (`QY_KUBECONFIG` set), where tests use their own namespaces and clean up. Capabilities a real cluster does
 * not have here (creating Ready nodes with our labels, playing the kubelet, injecting failures, recording
 * requests, compacting watch history) are null, and the tests that need them are skipped.
 */
export interface TestCluster {
  readonly kubeconfig: KubeConfig;
  readonly isReal: boolean;
  createNamespace(name: string, labels: Record<string, string>): Promise<void>;
  createPod(pod: KObject): Promise<KObject>;
  getPod(namespace: string, name: string): Promise<KObject | undefined>;
  deletePod(namespace: string, name: string): Promise<void>;
  events(namespace: string): Promise<KObject[]>;
  cleanup(): Promise<void>;
  /** Fake only: the API server itself. */
  readonly fake: FakeApiServer | null;
}

/** The cluster to test against: a real one when QY_KUBECONFIG is set, else a fresh fake API server. */
export async function openTestCluster(): Promise<TestCluster> {
  const path = process.env.QY_KUBECONFIG;
  return path ? new RealCluster(path) : FakeCluster.start();
}

/** A unique suffix for object names, so runs against a real cluster do not collide. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

class FakeCluster implements TestCluster {
  readonly isReal = false;
  private constructor(
    readonly fake: FakeApiServer,
    readonly kubeconfig: KubeConfig,
  ) {}

  static async start(): Promise<FakeCluster> {
    const fake = new FakeApiServer();
    await fake.start();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: fake.url, skipTLSVerify: true }],
      users: [{ name: 'test' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'test' }],
      currentContext: 'fake',
    });
    return new FakeCluster(fake, kc);
  }

  async createNamespace(name: string, labels: Record<string, string>): Promise<void> {
    this.fake.put('Namespace', { metadata: { name, labels } });
  }
  async createPod(pod: KObject): Promise<KObject> {
    return this.fake.put('Pod', { ...pod, status: { phase: 'Pending', ...((pod.status as object) ?? {}) } });
  }
  async getPod(namespace: string, name: string): Promise<KObject | undefined> {
    return this.fake.get('Pod', name, namespace);
  }
  async deletePod(namespace: string, name: string): Promise<void> {
    this.fake.remove('Pod', name, namespace);
  }
  async events(namespace: string): Promise<KObject[]> {
    return this.fake.events(namespace);
  }
  async cleanup(): Promise<void> {
    await this.fake.stop();
  }
}

class RealCluster implements TestCluster {
  readonly isReal = true;
  readonly fake = null;
  readonly kubeconfig: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly namespaces: string[] = [];

  constructor(path: string) {
    this.kubeconfig = new KubeConfig();
    this.kubeconfig.loadFromFile(path);
    this.core = this.kubeconfig.makeApiClient(CoreV1Api);
  }

  async createNamespace(name: string, labels: Record<string, string>): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name, labels } } });
    this.namespaces.push(name);
  }
  async createPod(pod: KObject): Promise<KObject> {
    return (await this.core.createNamespacedPod({ namespace: pod.metadata.namespace!, body: pod as never })) as unknown as KObject;
  }
  async getPod(namespace: string, name: string): Promise<KObject | undefined> {
    try {
      return JSON.parse(JSON.stringify(await this.core.readNamespacedPod({ namespace, name }))) as KObject;
    } catch {
      return undefined;
    }
  }
  async deletePod(namespace: string, name: string): Promise<void> {
    await this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch(() => undefined);
  }
  async events(namespace: string): Promise<KObject[]> {
    return JSON.parse(JSON.stringify((await this.core.listNamespacedEvent({ namespace })).items)) as KObject[];
  }
  async cleanup(): Promise<void> {
    for (const ns of this.namespaces) await this.core.deleteNamespace({ name: ns }).catch(() => undefined);
  }
}

/** Requests of the fake matching a method and a path pattern. */
export function requestsTo(fake: FakeApiServer, method: string, path: RegExp): RecordedRequest[] {
  return fake.requests.filter((r) => r.method === method && path.test(r.path));
}
