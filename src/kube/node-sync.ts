import { GPU_MILLI_PER_GPU, type NodeSpec } from '../protocol';
import type { HeartbeatBody, NodeLink } from '../node-link/node-link';
import type { Logger } from '../telemetry/logger';
import { modelledLoad, ratedWattsOf } from '../metering/power';
import { isTerminalPhase, type KubeNode, type KubePod } from './kube-types';
import { isNodeReady, isNodeUnschedulable, nodeIdOf, nodeSpecOf, type NodeLabelKeys } from './node-mapping';
import { addResources, emptyResources, podRequests, type KubeResources } from './requests';
import { SchedulerApiError, type SchedulerClient } from '../client';

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
}

export interface NodeSyncOptions {
  /** The bridge's node link: registrations go through it, and it asks heartbeatOf for each served node's heartbeat. */
  link: Pick<NodeLink, 'register' | 'serve'>;
  scheduler: SchedulerClient;
  keys: NodeLabelKeys;
  schedulerName: string;
  ratedPowerWatts: number;
  greenShare: number;
  log: Logger;
  /** Task keys (`<attemptId>/<taskIndex>`) bound on a node, for the heartbeat. */
  runningOn: (nodeId: string) => string[];
}

/**
 * Turns Kubernetes nodes into scheduler nodes over the node link the agents use: registration (again
 * whenever the spec changes, e.g. pods of other schedulers come and go), heartbeats while the node is Ready
 * (silence makes the scheduler mark it down, as for a dead agent), and cordon/uncordon through the API
 * following `spec.unschedulable` (Kubernetes is the source of truth: cordon kube nodes with kubectl).
 */
export class NodeSync {
  private readonly nodes = new Map<string, ServedNode>();

  constructor(private readonly opts: NodeSyncOptions) {}

  /**
   * The link's periodic re-registration: marked due, and done by the next reconcile, so the node stays
   * registered (and heartbeating) meanwhile; a refused spec is tried again too.
   */
  markReregisterDue(): void {
    for (const n of this.nodes.values()) {
      n.reregisterDue = true;
      n.refusedJson = undefined;
    }
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
      };
      if (known?.isReady && !served.isReady) this.opts.log.warn({ nodeId }, 'node is NotReady; heartbeats stop');
      this.nodes.set(nodeId, served);
    }
    // A deleted node: no more heartbeats, so the scheduler marks it down (there is no deregistration).
    for (const nodeId of [...this.nodes.keys()]) if (!seen.has(nodeId)) this.nodes.delete(nodeId);
    this.opts.link.serve([...this.nodes.keys()]);
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
    const r = await this.opts.link.register(spec);
    if (r.outcome === 'refused') this.opts.log.warn({ nodeId: spec.id, code: r.code }, `registration refused: ${r.message}`);
    if (r.outcome === 'ok') this.opts.log.info({ nodeId: spec.id, pool: spec.pool, allocatable: spec.allocatable }, 'node registered');
    return r.outcome;
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

  /**
   * The heartbeat of a Ready, registered node (none otherwise): utilisation estimated from requests, power
   * from the model the agents' virtual nodes use.
   */
  heartbeatOf(nodeId: string): HeartbeatBody | undefined {
    const n = this.nodes.get(nodeId);
    if (!n?.isReady || n.registeredJson === undefined) return undefined;
    // The pods' requests as the agents' virtual nodes count their tasks: one model, GPUs weighed as
    // metering weighs them (whole GPUs, on the first indices: Kubernetes does not say which).
    const gpus = Math.min(n.requested.gpus, n.spec.capacity.gpus);
    const held = { cpuMillis: n.requested.cpuMillis, memBytes: n.requested.memBytes, gpuMilliByIndex: Array.from({ length: gpus }, () => GPU_MILLI_PER_GPU) };
    return {
      ...modelledLoad(n.spec.capacity, held, ratedWattsOf(n.spec)),
      greenShare: this.opts.greenShare,
      powerSource: 'model',
      running: this.opts.runningOn(n.nodeId),
    };
  }
}
