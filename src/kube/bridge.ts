import type { KubernetesObject } from '@kubernetes/client-node';
import type { z } from 'zod';
import type { AgentWork } from '../protocol';
import { NodeLink, type WorkOutcome } from '../node-link/node-link';
import type { Logger } from '../telemetry/logger';
import { bridgeAgentId, type KubeBridgeConfig } from './config';
import { KubeApi, type CachedInformer } from './kube-api';
import { kubeNamespaceSchema, kubeNodeSchema, kubePodSchema, type KubeNamespace } from './kube-types';
import { NodeSync } from './node-sync';
import { PodBridge } from './pod-bridge';
import { SchedulerClient } from '../client';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * The Kubernetes bridge: towards the scheduler a node agent (NodeLink, as agents: registration, heartbeats,
 * the durable QY_ASSIGN consumer, status reports) plus an API client (submissions as tenants, cordons); towards
 * Kubernetes a secondary scheduler (informers on nodes, pods and namespaces; Binding; pod status and events).
 * All state is in memory and rebuilt from the informers and the scheduler after a restart.
 */
export class KubeBridge {
  readonly agentId: string;
  private readonly link: NodeLink;
  private nodeSync!: NodeSync;
  private podBridge!: PodBridge;
  private scheduler: SchedulerClient | undefined;
  private readonly kube: KubeApi;
  private readonly informers: { nodes: CachedInformer<KubernetesObject>; pods: CachedInformer<KubernetesObject>; namespaces: CachedInformer<KubernetesObject> };
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> = Promise.resolve();
  /** Rounds of looking at pending jobs' reasons done so far (tests wait for some rather than for a time). */
  pendingPolls = 0;
  private reconcileQueued = false;

  constructor(
    private readonly config: KubeBridgeConfig,
    kc: KubeConfig,
    private readonly log: Logger,
  ) {
    this.agentId = bridgeAgentId(config);
    this.kube = new KubeApi(kc, log);
    this.informers = { nodes: this.kube.nodeInformer(), pods: this.kube.podInformer(), namespaces: this.kube.namespaceInformer() };
    this.link = new NodeLink({
      agentId: this.agentId,
      natsUrl: config.natsUrl,
      natsAuth: config,
      connectionName: `qy-kube-${this.agentId}`,
      log,
      heartbeatIntervalMs: 1_000,
      heartbeat: (nodeId) => this.nodeSync.heartbeatOf(nodeId),
      onWork: (work) => this.onWork(work),
      onLogRequest: async (_nodeId, request) => this.podBridge?.readLog(request) ?? { ok: false, message: 'the Kubernetes bridge is starting' },
      onReregisterDue: () => this.nodeSync.markReregisterDue(),
      maxMessages: 256,
    });
  }

  async start(): Promise<void> {
    await this.link.connect();
    const scheduler = (this.scheduler = new SchedulerClient({ url: this.config.schedulerUrl, token: this.config.token }));
    this.podBridge = new PodBridge({
      kube: this.kube,
      scheduler,
      reporter: this.link,
      keys: {
        schedulerName: this.config.schedulerName,
        poolLabel: this.config.poolLabel,
        tenantLabel: this.config.tenantLabel,
        defaultTenant: this.config.defaultTenant,
        priorityAnnotation: this.config.priorityAnnotation,
        priorityClasses: splitList(this.config.priorityClasses),
      },
      log: this.log,
    });
    this.nodeSync = new NodeSync({
      link: this.link,
      scheduler,
      keys: {
        poolLabel: this.config.poolLabel,
        defaultPool: this.config.defaultPool,
        gpuModelLabel: this.config.gpuModelLabel,
        rackLabels: splitList(this.config.rackLabels),
        zoneLabel: this.config.zoneLabel,
        securityLabel: this.config.securityLabel,
      },
      schedulerName: this.config.schedulerName,
      ratedPowerWatts: this.config.ratedPowerWatts,
      greenShare: this.config.greenShare,
      log: this.log,
      runningOn: (nodeId) => this.podBridge.runningOn(nodeId),
    });
    for (const informer of Object.values(this.informers)) {
      informer.on('add', () => this.requestReconcile());
      informer.on('update', () => this.requestReconcile());
      informer.on('delete', () => this.requestReconcile());
    }
    // Namespaces first: a pod's tenant comes from its namespace.
    await this.informers.namespaces.start();
    await this.informers.nodes.start();
    await this.informers.pods.start();
    // Through the one-at-a-time chain: informer events may already have queued a reconcile.
    this.requestReconcile();
    await this.reconciling;
    this.timers.push(setInterval(() => this.requestReconcile(), this.config.syncIntervalMs));
    this.timers.push(
      setInterval(
        () =>
          void this.podBridge.pollPending().then(
            () => this.pendingPolls++,
            (err) => this.log.warn({ err }, 'pending poll failed'),
          ),
        this.config.syncIntervalMs,
      ),
    );
    // Heartbeats, the periodic re-registration and the work consumer.
    await this.link.run();
    this.log.info({ agentId: this.agentId }, 'kubernetes bridge started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.kube.stop();
    for (const informer of Object.values(this.informers)) await informer.stop();
    await this.link.stopIntake();
    await this.reconciling.catch(() => undefined);
    await this.link.close();
    await this.scheduler?.close();
  }

  /** Reconciles soon, once, however many informer events arrive meanwhile. */
  private requestReconcile(): void {
    if (this.reconcileQueued || this.stopped) return;
    this.reconcileQueued = true;
    this.reconciling = this.reconciling.then(async () => {
      this.reconcileQueued = false;
      await this.reconcileNow().catch((err) => this.log.error({ err }, 'reconcile failed'));
    });
  }

  private async reconcileNow(): Promise<void> {
    if (this.stopped) return;
    const nodes = parseAll(this.informers.nodes.list(), kubeNodeSchema, this.log);
    const pods = parseAll(this.informers.pods.list(), kubePodSchema, this.log);
    const namespaces = new Map<string, KubeNamespace>(parseAll(this.informers.namespaces.list(), kubeNamespaceSchema, this.log).map((n) => [n.metadata.name, n]));
    await this.nodeSync.reconcile(nodes, pods);
    await this.podBridge.reconcile(pods, namespaces);
  }

  // ---- Work from the link (behind its term fence): assignments bind pods, cancels delete them ----------

  /** 'retry' while the bridge does not know the job yet (just restarted); a throw is redelivered later. */
  private async onWork(work: AgentWork): Promise<WorkOutcome> {
    if (work.type === 'assign') return (await this.podBridge.onAssign(work)) === 'retry' ? 'retry' : 'ack';
    await this.podBridge.onCancel(work);
    return 'ack';
  }
}

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Parses informer objects with the k8s-facing schemas; an object that does not parse is logged and skipped. */
function parseAll<T extends z.ZodType>(items: readonly KubernetesObject[], schema: T, log: Logger): z.infer<T>[] {
  const out: z.infer<T>[] = [];
  for (const item of items) {
    const parsed = schema.safeParse(item);
    if (parsed.success) out.push(parsed.data);
    else log.warn({ name: item.metadata?.name, issues: parsed.error.issues.slice(0, 3) }, 'Kubernetes object not understood; skipped');
  }
  return out;
}
