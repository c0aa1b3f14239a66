import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import type { ClusterState } from '../src/core';
import { nodeSpecSchema, type Heartbeat, type NodeSpec, type NodeState, type Pool, type Registration } from '../src/protocol';
import { WatchedKv } from '../src/store/watched-kv';
import type { Logger } from '../src/telemetry/logger';

/** Whether the node's agent is heard from. */
export type Liveness = 'alive' | 'suspect' | 'down';

/** A registered node as the scheduler tracks it. */
export interface NodeEntry {
  id: string;
  agentId: string;
  spec: NodeSpec;
  /** Operator flags, kept across restarts. */
  cordoned: boolean;
  draining: boolean;
  liveness: Liveness;
  lastSeenMs: number;
  lastHeartbeat?: Heartbeat;
  /** Heartbeats missed since the last one received (counted once each in the metrics). */
  missedHeartbeats: number;
  /**
   * Since when the node has been silent, once it went down: kept in the bucket, so the node's garbage
   * collection (QY_NODE_GC_AFTER_MS) counts across restarts of the scheduler. Cleared when it is heard from.
   */
  downSinceMs?: number;
  /** The bucket's revision of the node's value as this replica last wrote or followed it. */
  revision?: number;
}

/** What is stored per node in the KV bucket. */
const storedNodeSchema = z.object({ agentId: z.string(), spec: nodeSpecSchema, cordoned: z.boolean(), draining: z.boolean(), downSinceMs: z.number().int().optional() });
type StoredNode = z.infer<typeof storedNodeSchema>;

/** A stored down time holds unless this replica hears from the node now. */
const downSince = (known: NodeEntry | undefined, stored: StoredNode): number | undefined => (known?.liveness === 'alive' ? undefined : (stored.downSinceMs ?? known?.downSinceMs));

/**
 * Registered nodes: their agents, operator flags (cordon, drain) and liveness from heartbeats. The
 * registrations and flags are kept in the `qy-nodes` KV bucket so a restarted scheduler knows every node
 * before the first heartbeat arrives; liveness is rebuilt from heartbeats.
 */
export class NodeRegistry {
  readonly entries = new Map<string, NodeEntry>();
  private cluster: ClusterState | undefined;
  private readonly bucket: WatchedKv<StoredNode>;

  constructor(
    kv: KV,
    private readonly log: Logger,
  ) {
    this.bucket = new WatchedKv(kv, storedNodeSchema, log, 'the node registry');
  }

  /** Loads the stored nodes; they start suspect until their agents are heard from. */
  async load(nowMs: number): Promise<void> {
    const stored = await this.bucket.loadAll((nodeId) => this.log.warn({ nodeId }, 'stored node is invalid; ignored until it registers again'));
    for (const [key, node] of stored) {
      const known = this.entries.get(key);
      this.entries.set(key, { id: key, ...node, liveness: known?.liveness ?? 'suspect', lastSeenMs: known?.lastSeenMs ?? nowMs, lastHeartbeat: known?.lastHeartbeat, missedHeartbeats: known?.missedHeartbeats ?? 0, downSinceMs: downSince(known, node) });
    }
  }

  /**
   * Follows the bucket from now on (a standby's view): nodes the leader registers or flags appear here
   * too, without being written back, until stopFollowing.
   */
  async follow(nowMs: () => number): Promise<void> {
    await this.bucket.follow(
      (key, node, revision) => {
        const known = this.entries.get(key);
        // The leader's own writes come back too: an unchanged node is not put into the cluster again.
        if (known && known.agentId === node.agentId && known.cordoned === node.cordoned && known.draining === node.draining && JSON.stringify(known.spec) === JSON.stringify(node.spec)) {
          known.revision = revision;
          return;
        }
        const entry: NodeEntry = { id: key, ...node, liveness: known?.liveness ?? 'alive', lastSeenMs: known?.lastSeenMs ?? nowMs(), lastHeartbeat: known?.lastHeartbeat, missedHeartbeats: known?.missedHeartbeats ?? 0, downSinceMs: downSince(known, node), revision };
        try {
          this.cluster?.upsertNode(entry.spec);
        } catch (err) {
          this.log.warn({ nodeId: key, err: (err as Error).message }, 'followed node change does not fit the cluster; kept the old one');
          return;
        }
        this.entries.set(key, entry);
        this.syncState(entry);
      },
      // A node the leader forgot (down too long, or an operator removed it).
      (key, revision) => {
        const entry = this.entries.get(key);
        // A delete older than what this replica holds (the node registered again since) is stale.
        if (!entry || (entry.revision ?? 0) > revision) return;
        try {
          this.drop(entry);
        } catch (err) {
          this.log.warn({ nodeId: key, err: (err as Error).message }, 'followed node removal does not fit the cluster; kept the node');
        }
      },
    );
  }

  /** Stops following the bucket. */
  stopFollowing(): void {
    this.bucket.stop();
  }

  /** Puts every known node into a (freshly reset) cluster state. */
  attach(cluster: ClusterState): void {
    this.cluster = cluster;
    for (const entry of this.entries.values()) {
      cluster.upsertNode(entry.spec);
      this.applyTelemetry(entry);
      this.syncState(entry);
    }
  }

  /** Registers or re-registers a node; throws when the cluster refuses the change (pool change under load). */
  async register(reg: Registration, nowMs: number): Promise<NodeEntry> {
    const known = this.entries.get(reg.node.id);
    this.cluster?.upsertNode(reg.node);
    const entry: NodeEntry = {
      id: reg.node.id,
      agentId: reg.agentId,
      spec: reg.node,
      cordoned: known?.cordoned ?? false,
      draining: known?.draining ?? false,
      liveness: 'alive',
      lastSeenMs: nowMs,
      lastHeartbeat: known?.lastHeartbeat,
      missedHeartbeats: 0,
      // Until its write is stored, a delete the watch brings is older than it (only this leader registers and
      // forgets the pool's nodes): ignored.
      revision: Number.MAX_SAFE_INTEGER,
    };
    this.entries.set(entry.id, entry);
    this.syncState(entry);
    await this.persist(entry);
    return entry;
  }

  /** Records a heartbeat. Returns true when it brings the node back from suspect or down. */
  heartbeat(hb: Heartbeat, nowMs: number): boolean {
    const entry = this.entries.get(hb.nodeId);
    if (!entry) return false;
    entry.lastSeenMs = nowMs;
    entry.lastHeartbeat = hb;
    this.applyTelemetry(entry);
    if (entry.liveness === 'alive') return false;
    entry.liveness = 'alive';
    entry.downSinceMs = undefined;
    this.syncState(entry);
    return true;
  }

  /** Moves silent nodes to suspect, then down. Returns the nodes that just went down. */
  sweep(nowMs: number, suspectAfterMs: number, downAfterMs: number): NodeEntry[] {
    const wentDown: NodeEntry[] = [];
    for (const entry of this.entries.values()) {
      const silentMs = nowMs - entry.lastSeenMs;
      const next: Liveness = silentMs >= downAfterMs ? 'down' : silentMs >= suspectAfterMs ? 'suspect' : entry.liveness;
      if (next === entry.liveness || (entry.liveness === 'down' && next === 'suspect')) continue;
      entry.liveness = next;
      this.syncState(entry);
      if (next === 'down') {
        entry.downSinceMs ??= entry.lastSeenMs;
        wentDown.push(entry);
      }
    }
    return wentDown;
  }

  /** Power drawn per pool by the nodes heard from (not down), from their last heartbeats: total and green, and how many nodes. */
  poolPower(): Record<Pool, { nodes: number; watts: number; greenWatts: number }> {
    const blank = () => ({ nodes: 0, watts: 0, greenWatts: 0 });
    const power: Record<Pool, { nodes: number; watts: number; greenWatts: number }> = { general: blank(), intelligent: blank(), super: blank() };
    for (const e of this.entries.values()) {
      if (e.liveness === 'down' || !e.lastHeartbeat) continue;
      power[e.spec.pool].nodes++;
      power[e.spec.pool].watts += e.lastHeartbeat.powerWatts;
      power[e.spec.pool].greenWatts += e.lastHeartbeat.powerWatts * e.lastHeartbeat.greenShare;
    }
    return power;
  }

  /** Sets the operator flags of a node. */
  async setFlags(nodeId: string, flags: { cordoned: boolean; draining: boolean }): Promise<NodeEntry | undefined> {
    const entry = this.entries.get(nodeId);
    if (!entry) return undefined;
    const before = { cordoned: entry.cordoned, draining: entry.draining };
    entry.cordoned = flags.cordoned;
    entry.draining = flags.draining;
    try {
      await this.persist(entry);
    } catch (err) {
      Object.assign(entry, before);
      throw err;
    }
    this.syncState(entry);
    return entry;
  }

  /** Tasks placed on a node now (0 for a node not in the cluster). */
  tasksOn(nodeId: string): number {
    return this.cluster?.getNode(nodeId)?.taskCount ?? 0;
  }

  /**
   * Forgets a down node: out of the bucket (every replica drops it), the cluster and the registry. False, and
   * nothing done, when it is no longer this entry (registered again) or no longer down; refused (throws) while
   * tasks are placed on it. An agent that registers the node again brings it back.
   */
  async forget(entry: NodeEntry): Promise<boolean> {
    const current = () => this.entries.get(entry.id) === entry && entry.liveness === 'down';
    if (!current()) return false;
    const tasks = this.tasksOn(entry.id);
    if (tasks > 0) throw new Error(`node ${entry.id} still has ${tasks} tasks placed on it`);
    await this.bucket.delete(entry.id);
    const now = this.entries.get(entry.id);
    if (now === undefined) return true; // dropped already: the bucket's watch told of the delete first
    if (!current()) {
      // Heard from again, or registered anew, meanwhile: it stays, stored again.
      await this.persist(now);
      return false;
    }
    this.drop(entry);
    return true;
  }

  /** Listeners told of every node forgotten here or by another replica (the gateway drops its agent's consumer). */
  readonly onForgotten: ((entry: NodeEntry) => void)[] = [];

  private drop(entry: NodeEntry): void {
    if (this.cluster?.getNode(entry.id)) this.cluster.removeNode(entry.id);
    this.entries.delete(entry.id);
    for (const listener of this.onForgotten) listener(entry);
  }

  /** The state placement sees: down and suspect win over cordoned. */
  stateOf(entry: NodeEntry): NodeState {
    if (entry.liveness !== 'alive') return entry.liveness;
    return entry.cordoned ? 'cordoned' : 'ready';
  }

  private syncState(entry: NodeEntry): void {
    if (this.cluster?.getNode(entry.id)) this.cluster.setNodeState(entry.id, this.stateOf(entry));
  }

  private applyTelemetry(entry: NodeEntry): void {
    const hb = entry.lastHeartbeat;
    if (hb && this.cluster?.getNode(entry.id)) this.cluster.setNodeTelemetry(entry.id, hb.powerWatts, hb.greenShare);
  }

  /**
   * Stores the node's down time as it is now (by the leader of its pool): when it went down, it was last heard
   * from then; heard from again, the stored time is cleared. Nothing when it was forgotten or registered anew.
   */
  async persistDownTime(entry: NodeEntry): Promise<void> {
    if (this.entries.get(entry.id) === entry) await this.persist(entry);
  }

  /** Whether any node of an agent is still registered (its work consumer is needed). */
  servesNodes(agentId: string): boolean {
    for (const e of this.entries.values()) if (e.agentId === agentId) return true;
    return false;
  }

  private async persist(entry: NodeEntry): Promise<void> {
    const stored: StoredNode = { agentId: entry.agentId, spec: entry.spec, cordoned: entry.cordoned, draining: entry.draining, ...(entry.liveness === 'down' && entry.downSinceMs !== undefined ? { downSinceMs: entry.downSinceMs } : {}) };
    entry.revision = await this.bucket.put(entry.id, stored);
  }
}
