import type { NodeResources, NodeSpec, Placement } from '../protocol';
import { nodeShareOf } from './attribution';

/** Share of rated power a server draws when idle, for the utilisation model. */
export const IDLE_POWER_SHARE = 0.35;
/** Rated power assumed for a node that does not declare one. */
export const DEFAULT_RATED_WATTS = 400;

/** Watts from utilisation: idle draw plus the busy share of the rest of the rated power. */
export function modelPowerWatts(ratedWatts: number, util: number): number {
  const idle = IDLE_POWER_SHARE * ratedWatts;
  return idle + Math.min(1, Math.max(0, util)) * (ratedWatts - idle);
}

/** The key of a zone's power cap and draw (`QY_POWER_BUDGETS_KW`, the simulator's caps), beside pool names. */
export const zoneKey = (zone: string): string => `zone:${zone}`;

/**
 * Watts a placement would add under each power-cap key (its pool, and each node's `zone:<name>`): every
 * task's share of its node, as metering charges it, times the node's rated power above idle. The scheduler's
 * power budget and the simulator's caps both count with this.
 */
export function addedWattsByKey(placement: Placement, nodeOf: (nodeId: string) => { allocatable: NodeResources; zone: string; spanWatts: number } | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const task of placement.tasks) {
    const node = nodeOf(task.nodeId);
    if (!node) continue;
    const watts = nodeShareOf(task, node.allocatable) * node.spanWatts;
    for (const key of [placement.pool, zoneKey(node.zone)]) out.set(key, (out.get(key) ?? 0) + watts);
  }
  return out;
}

/** A node's rated power, or the default. */
export function ratedWattsOf(spec: Pick<NodeSpec, 'ratedPowerWatts'>): number {
  return spec.ratedPowerWatts ?? DEFAULT_RATED_WATTS;
}
