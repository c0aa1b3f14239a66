import type { ClusterState, Placement } from '../src/core';
import { busyShare } from '../src/metering/attribution';
import { IDLE_POWER_SHARE, addedWattsByKey, capKwAt, modelPowerWatts, ratedWattsOf, zoneKey, type PowerCapKw } from '../src/metering/power';

/**
 * Power caps per pool and zone, checked at placement against the draw estimated from allocations (each
 * node's idle draw plus the busy share of the rest of its rated power, the agents' utilisation model):
 * an estimate does not lag behind a job that has just started, as measurements do. A cap of 24 hourly values
 * holds the value of the current hour (UTC); jobs running when a cap falls keep running, new ones wait.
 */
export class PowerBudget {
  private estimate: Map<string, number> | undefined;
  /** Whether some cap changes with the hour (a job a cap held may fit when the hour turns). */
  readonly hourly: boolean;

  constructor(
    private readonly capsKw: Readonly<Partial<Record<string, PowerCapKw>>>,
    private readonly cluster: () => ClusterState,
    private readonly now: () => number,
  ) {
    this.hourly = Object.values(capsKw).some((cap) => Array.isArray(cap));
  }

  get enabled(): boolean {
    return Object.keys(this.capsKw).length > 0;
  }

  /** Forgets the estimate; the next check recomputes it from the cluster (once per scheduling cycle). */
  refresh(): void {
    this.estimate = undefined;
  }

  /** Why `placement` would exceed a cap, or undefined when it fits under every cap it touches. */
  blocks(placement: Placement): string | undefined {
    if (!this.enabled) return undefined;
    const est = (this.estimate ??= this.estimateNow());
    const nowMs = this.now();
    for (const [key, added] of this.addedWatts(placement)) {
      const cap = this.capsKw[key];
      if (cap === undefined) continue;
      const capKw = capKwAt(cap, nowMs);
      const inUse = est.get(key) ?? 0;
      if (inUse + added > capKw * 1000) {
        const kw = (w: number) => (w / 1000).toFixed(1);
        return `held by the power budget of ${key.startsWith('zone:') ? `zone ${key.slice(5)}` : `pool ${key}`}: ${kw(inUse)} of ${capKw} kW${typeof cap === 'number' ? '' : ' (this hour)'} estimated in use, this job adds ${kw(added)} kW`;
      }
    }
    return undefined;
  }

  /** Counts a placement that was made into the estimate, until the next refresh. */
  placed(placement: Placement): void {
    if (!this.estimate) return;
    for (const [key, added] of this.addedWatts(placement)) this.estimate.set(key, (this.estimate.get(key) ?? 0) + added);
  }

  private addedWatts(placement: Placement): Map<string, number> {
    const cluster = this.cluster();
    return addedWattsByKey(placement, (nodeId) => {
      const node = cluster.getNode(nodeId);
      return node && { allocatable: node.allocatable, zone: node.spec.zone, spanWatts: ratedWattsOf(node.spec) * (1 - IDLE_POWER_SHARE) };
    });
  }

  private estimateNow(): Map<string, number> {
    const out = new Map<string, number>();
    for (const node of this.cluster().nodes()) {
      if (node.state === 'down') continue;
      const busy = busyShare(node.requestedCpuMillis, node.usedGpuMilli(), node.allocatable);
      const watts = modelPowerWatts(ratedWattsOf(node.spec), busy);
      for (const key of [node.spec.pool, zoneKey(node.spec.zone)]) out.set(key, (out.get(key) ?? 0) + watts);
    }
    return out;
  }
}
