import type { NodeSpec } from '../protocol';

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

/** A node's rated power, or the default. */
export function ratedWattsOf(spec: Pick<NodeSpec, 'ratedPowerWatts'>): number {
  return spec.ratedPowerWatts ?? DEFAULT_RATED_WATTS;
}
