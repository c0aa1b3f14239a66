import type { NatsConnection } from '@nats-io/transport-node';
import { PROTOCOL_VERSION, registrationReplySchema, subjects, type Heartbeat, type NodeSpec, type Registration } from '../protocol';
import type { Logger } from '../telemetry/logger';
import { modelPowerWatts } from '../metering/power';
import { isTerminalPhase, type KubeNode, type KubePod } from './kube-types';
import { isNodeReady, isNodeUnschedulable, nodeAllocatable, nodeIdOf, nodeSpecOf, type NodeLabelKeys } from './node-mapping';
import { addResources, emptyResources, podRequests, type KubeResources } from './requests';
import { SchedulerApiError, type SchedulerClient } from './scheduler-client';

/** What the bridge knows of one Kubernetes node it serves. */
interface ServedNode {
  nodeId: string;
  spec: NodeSpec;
  /** JSON of the spec last registered; undefined until the scheduler accepted one. */
  registeredJson?: string;
  /** JSON of a spec the scheduler refused: not sent again until it changes (or the periodic re-registration). */
  refusedJson?: string;
  /** The periodic re-registration is due (done by the next reconcile, without pausing heartbeats). */
  reregisterDue?: boolean;
  isReady: boolean;
  isUnschedulable: boolean;
  /** The cordon flag the scheduler has as far as the bridge knows; undefined until checked. */
  cordonedInScheduler?: boolean;
  /** Requests of every unfinished pod on the node, for the utilisation estimate. */
  requested: KubeResources;
  allocatable: KubeResources;
}

export interface NodeSyncOptions {
  nc: NatsConnection;
  agentId: string;
  scheduler: SchedulerClient;
  keys: NodeLabelKeys;
  schedulerName: string;
  ratedPowerWatts: number;
  greenShare: number;
  log: Logger;
  /** Task keys (`<attemptId>/<taskIndex>`) bound on a node, for the heartbeat. */
  runningOn: (nodeId: string) => string[];
}

/** Registrations are repeated this often, as agents do, so a scheduler that lost its registry learns them again. */
const REREGISTER_MS = 60_000;

/**
 * Turns Kubernetes nodes into scheduler nodes, speaking the agent protocol: registration (again whenever
 * the spec changes, e.g. pods of other schedulers come and go), heartbeats while the node is Ready
 * (silence makes the scheduler mark it down, as for a dead agent), and cordon/uncordon through the API
 * following `spec.unschedulable` (Kubernetes is the source of truth: cordon kube nodes with kubectl).
 */
export class NodeSync {
  private readonly nodes = new Map<string, ServedNode>();
  private heartbeatIntervalMs = 1_000;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reregisterTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: NodeSyncOptions) {}

  start(): void {
    this.scheduleHeartbeats();
    // Marked due, and done by the next reconcile: the node stays registered (and heartbeating) meanwhile.
    this.reregisterTimer = setInterval(() => {
      for (const n of this.nodes.values()) {
        n.reregisterDue = true;
        n.refusedJson = undefined;
      }
    }, REREGISTER_MS);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.reregisterTimer);
  }

  /** Brings the served nodes in line with the informers' caches. */
  async reconcile(kubeNodes: KubeNode[], pods: KubePod[]): Promise<void> {
    const foreign = new Map<string, KubeResources>();
    const requested = new Map<string, KubeResources>();
    for (const pod of pods) {
      const nodeName = pod.spec.nodeName;
      if (!nodeName || isTerminalPhase(pod.status.phase)) continue;
      const req = podRequests(pod);
      requested.set(nodeName, addResources(requested.get(nodeName) ?? emptyResources(), req));
      // Pods of other schedulers hold capacity the scheduler must not hand out; ours are its own placements.
      if (pod.spec.schedulerName !== this.opts.schedulerName) foreign.set(nodeName, addResources(foreign.get(nodeName) ?? emptyResources(), req));
    }
    const seen = new Set<string>();
    for (const node of kubeNodes) {
      const name = node.metadata.name;
      const mapped = nodeSpecOf(node, foreign.get(name) ?? emptyResources(), this.opts.keys, this.opts.ratedPowerWatts);
      if ('ignored' in mapped) {
        this.opts.log.debug({ node: name, why: mapped.ignored }, 'node not served');
        continue;
      }
      const nodeId = nodeIdOf(name)!;
      seen.add(nodeId);
      const known = this.nodes.get(nodeId);
      const served: ServedNode = {
        nodeId,
        spec: mapped.spec,
        registeredJson: known?.registeredJson,
        reregisterDue: known?.reregisterDue,
        refusedJson: known?.refusedJson,
        isReady: isNodeReady(node),
        isUnschedulable: isNodeUnschedulable(node),
        cordonedInScheduler: known?.cordonedInScheduler,
        requested: requested.get(name) ?? emptyResources(),
        allocatable: nodeAllocatable(node),
      };
      if (known?.isReady && !served.isReady) this.opts.log.warn({ nodeId }, 'node is NotReady; heartbeats stop');
      this.nodes.set(nodeId, served);
    }
    // A deleted node: no more heartbeats, so the scheduler marks it down (there is no deregistration).
    for (const nodeId of [...this.nodes.keys()]) if (!seen.has(nodeId)) this.nodes.delete(nodeId);
    await this.registerChanged();
  }

  /** Registers Ready nodes whose spec changed, then makes the scheduler's cordon flag follow Kubernetes. */
  private async registerChanged(): Promise<void> {
    const work = [...this.nodes.values()].filter((n) => n.isReady).map(async (n) => {
      const json = JSON.stringify(n.spec);
      // A NotReady node is not registered: registration counts as a sign of life.
      if ((n.registeredJson !== json || n.reregisterDue) && n.refusedJson !== json) {
        const outcome = await this.register(n.spec);
        if (outcome === 'ok') {
          n.registeredJson = json;
          n.reregisterDue = false;
        } else if (outcome === 'refused') n.refusedJson = json;
      }
      if (n.registeredJson !== undefined) await this.syncCordon(n);
    });
    await Promise.all(work);
  }

  /**
   * Registers a node: 'refused' when the scheduler will not take this spec (e.g. fewer GPUs than it has
   * allocated there, after pods of another scheduler took some), 'unanswered' when it may later.
   */
  private async register(spec: NodeSpec): Promise<'ok' | 'refused' | 'unanswered'> {
    const body: Registration = { type: 'register', v: PROTOCOL_VERSION, agentId: this.opts.agentId, node: spec };
    try {
      const msg = await this.opts.nc.request(subjects.register(spec.id), JSON.stringify(body), { timeout: 5_000 });
      const reply = registrationReplySchema.parse(msg.json());
      if (!reply.ok) {
        if (reply.code === 'QY_ERR_NOT_READY') return 'unanswered';
        this.opts.log.warn({ nodeId: spec.id, code: reply.code }, `registration refused: ${reply.message}`);
        return 'refused';
      }
      if (reply.heartbeatIntervalMs !== this.heartbeatIntervalMs) this.heartbeatIntervalMs = reply.heartbeatIntervalMs;
      this.opts.log.info({ nodeId: spec.id, pool: spec.pool, allocatable: spec.allocatable }, 'node registered');
      return 'ok';
    } catch (err) {
      this.opts.log.debug({ nodeId: spec.id, err: (err as Error).message }, 'registration not answered; retried at the next reconcile');
      return 'unanswered';
    }
  }

  private async syncCordon(n: ServedNode): Promise<void> {
    try {
      if (n.cordonedInScheduler === undefined) n.cordonedInScheduler = (await this.opts.scheduler.node(n.nodeId)).cordoned;
      if (n.cordonedInScheduler === n.isUnschedulable) return;
      await this.opts.scheduler.cordon(n.nodeId, n.isUnschedulable);
      n.cordonedInScheduler = n.isUnschedulable;
      this.opts.log.info({ nodeId: n.nodeId, cordoned: n.isUnschedulable }, n.isUnschedulable ? 'node cordoned (spec.unschedulable)' : 'node uncordoned');
    } catch (err) {
      // Checked again at the next reconcile.
      n.cordonedInScheduler = undefined;
      this.opts.log.warn({ nodeId: n.nodeId, err: (err as Error).message, code: err instanceof SchedulerApiError ? err.code : undefined }, 'cordon not synced');
    }
  }

  private scheduleHeartbeats(): void {
    if (this.stopped) return;
    this.heartbeatTimer = setTimeout(() => {
      this.sendHeartbeats();
      this.scheduleHeartbeats();
    }, this.heartbeatIntervalMs);
  }

  /** Heartbeats for Ready, registered nodes: utilisation estimated from requests, power from a model. */
  sendHeartbeats(): void {
    if (this.opts.nc.isClosed()) return;
    const atMs = Date.now();
    for (const n of this.nodes.values()) {
      if (!n.isReady || n.registeredJson === undefined) continue;
      const cpuUtil = n.allocatable.cpuMillis > 0 ? Math.min(1, n.requested.cpuMillis / n.allocatable.cpuMillis) : 0;
      const hb: Heartbeat = {
        type: 'heartbeat',
        nodeId: n.nodeId,
        atMs,
        cpuUtil,
        memUsedBytes: Math.min(n.requested.memBytes, n.allocatable.memBytes),
        gpus: [],
        // The agents' utilisation model.
        powerWatts: modelPowerWatts(this.opts.ratedPowerWatts, cpuUtil),
        greenShare: this.opts.greenShare,
        powerSource: 'model',
        running: this.opts.runningOn(n.nodeId),
      };
      this.opts.nc.publish(subjects.heartbeat(n.nodeId), JSON.stringify(hb));
    }
  }
}
