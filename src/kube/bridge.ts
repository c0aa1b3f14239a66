import { jetstream, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { z } from 'zod';
import { StatusPublisher } from '../../agents/status-publisher';
import { STREAMS, agentConsumerName, agentWorkSchema, type AgentWork } from '../protocol';
import { JetStreamPublisher } from '../store/js-publisher';
import { WorkFence } from '../store/lease';
import { connectNats } from '../store/nats';
import { agentInboxPrefix } from '../store/nats-auth';
import type { Logger } from '../telemetry/logger';
import { bridgeAgentId, type KubeBridgeConfig } from './config';
import { KubeApi, type CachedInformer } from './kube-api';
import { kubeNamespaceSchema, kubeNodeSchema, kubePodSchema, type KubeNamespace } from './kube-types';
import { NodeSync } from './node-sync';
import { PodBridge } from './pod-bridge';
import { SchedulerClient } from './scheduler-client';
import { TaskReporter } from './task-reporter';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * The Kubernetes bridge: towards the scheduler a node agent (registration, heartbeats, the durable
 * QY_ASSIGN consumer, status reports) plus an API client (submissions as tenants, cordons); towards
 * Kubernetes a secondary scheduler (informers on nodes, pods and namespaces; Binding; pod status and events).
 * All state is in memory and rebuilt from the informers and the scheduler after a restart.
 */
export class KubeBridge {
  readonly agentId: string;
  private nc!: NatsConnection;
  private publisher!: JetStreamPublisher;
  private statuses!: StatusPublisher;
  private nodeSync!: NodeSync;
  private podBridge!: PodBridge;
  private readonly kube: KubeApi;
  private readonly informers: { nodes: CachedInformer<KubernetesObject>; pods: CachedInformer<KubernetesObject>; namespaces: CachedInformer<KubernetesObject> };
  private work: ConsumerMessages | undefined;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> = Promise.resolve();
  /** Rounds of looking at pending jobs' reasons done so far (tests wait for some rather than for a time). */
  pendingPolls = 0;
  private reconcileQueued = false;
  /** The highest scheduler leadership term seen in work, per node. */
  private readonly fence = new WorkFence();

  constructor(
    private readonly config: KubeBridgeConfig,
    kc: KubeConfig,
    private readonly log: Logger,
  ) {
    this.agentId = bridgeAgentId(config);
    this.kube = new KubeApi(kc, log);
    this.informers = { nodes: this.kube.nodeInformer(), pods: this.kube.podInformer(), namespaces: this.kube.namespaceInformer() };
  }

  async start(): Promise<void> {
    const inboxPrefix = agentInboxPrefix(this.agentId);
    this.nc = await connectNats(this.config.natsUrl, `qy-kube-${this.agentId}`, this.log, { auth: this.config, inboxPrefix });
    this.publisher = new JetStreamPublisher(this.nc, 5_000, inboxPrefix);
    this.statuses = new StatusPublisher(this.publisher, this.log);
    const scheduler = new SchedulerClient(this.config.schedulerUrl, this.config.token);
    this.podBridge = new PodBridge({
      kube: this.kube,
      scheduler,
      reporter: new TaskReporter(this.statuses),
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
      nc: this.nc,
      agentId: this.agentId,
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
    this.nodeSync.start();
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
    void this.consumeWork();
    this.log.info({ agentId: this.agentId }, 'kubernetes bridge started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.kube.stop();
    for (const informer of Object.values(this.informers)) await informer.stop();
    this.nodeSync?.stop();
    await this.work?.close().catch(() => undefined);
    await this.reconciling.catch(() => undefined);
    this.statuses?.stop();
    this.publisher?.close();
    await this.nc?.drain().catch(() => undefined);
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

  // ---- Work: the agent's durable consumer -------------------------------------------------------------

  private async consumeWork(): Promise<void> {
    const js = jetstream(this.nc);
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(STREAMS.assign, agentConsumerName(this.agentId));
        this.work = await consumer.consume({ max_messages: 256 });
        for await (const msg of this.work) void this.onWork(msg);
      } catch (err) {
        if (this.stopped) return;
        this.log.debug({ err: (err as Error).message }, 'work consumer unavailable; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async onWork(msg: JsMsg): Promise<void> {
    let work: AgentWork;
    try {
      work = agentWorkSchema.parse(msg.json());
    } catch {
      this.log.error({ subject: msg.subject }, 'unreadable work message; dropped');
      msg.term();
      return;
    }
    // Fencing, as agents do: work from a deposed scheduler carries an older term.
    if (!this.fence.admits(work.nodeId, work.term)) {
      this.log.warn({ jobId: work.jobId, nodeId: work.nodeId, term: work.term }, 'work from a deposed scheduler; ignored');
      msg.term();
      return;
    }
    try {
      if (work.type === 'assign') {
        if ((await this.podBridge.onAssign(work)) === 'retry') {
          msg.nak(500);
          return;
        }
      } else await this.podBridge.onCancel(work);
      msg.ack();
    } catch (err) {
      this.log.warn({ jobId: work.jobId, err: (err as Error).message }, 'work not done; redelivered later');
      msg.nak(1_000);
    }
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
