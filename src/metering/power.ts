import { z } from 'zod';
import { GPU_MILLI_PER_GPU, type Heartbeat, type NodeResources, type NodeSpec, type Placement } from '../protocol';
import { hourOfDay } from '../time';
import { busyShare, nodeShareOf } from './attribution';

/** What a power cap applies to: a pool, or a zone (`zone:<name>`). */
export const powerCapKeySchema = z.string().regex(/^(general|intelligent|super|zone:.+)$/, 'must be a pool or zone:<name>');

/**
 * A power cap in kW: a constant, or 24 hourly values, 00:00 to 23:00 UTC (a cap that follows the green
 * supply: higher in the hours the hub's own wind and solar produce). The same in the service and the simulator.
 */
export const powerCapKwSchema = z.union([z.number().positive(), z.array(z.number().min(0)).length(24, 'must list 24 hourly values, 00:00 to 23:00 UTC')]);
export type PowerCapKw = z.infer<typeof powerCapKwSchema>;

/** Power caps per pool and zone. */
export const powerCapsKwSchema = z.record(powerCapKeySchema, powerCapKwSchema);

/** The cap in kW at a time. */
export function capKwAt(cap: PowerCapKw, atMs: number): number {
  return typeof cap === 'number' ? cap : cap[hourOfDay(atMs)];
}

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

/** What a node's tasks were allocated, summed: cores, memory, and milli-GPUs on each GPU index. */
export interface HeldResources {
  cpuMillis: number;
  memBytes: number;
  gpuMilliByIndex: number[];
}

/**
 * A heartbeat's figures for a node without meters, from what its tasks were allocated: utilisation, memory,
 * per-GPU load, and watts from the utilisation model with GPUs weighed as metering weighs them. The
 * virtual-node agent and the Kubernetes bridge both report with this, so a GPU node draws and bills alike
 * whichever path it comes by.
 */
export function modelledLoad(
  alloc: Pick<NodeResources, 'cpuMillis' | 'memBytes' | 'gpus' | 'gpuMemBytes'>,
  held: HeldResources,
  ratedWatts: number,
): Pick<Heartbeat, 'cpuUtil' | 'memUsedBytes' | 'gpus' | 'powerWatts'> {
  const gpus = Array.from({ length: alloc.gpus }, (_, index) => {
    const util = Math.min(1, (held.gpuMilliByIndex[index] ?? 0) / GPU_MILLI_PER_GPU);
    return { index, util, memUsedBytes: Math.round((util * alloc.gpuMemBytes) / 2) };
  });
  const gpuMilli = held.gpuMilliByIndex.reduce((sum, m, i) => sum + (i < alloc.gpus ? m : 0), 0);
  return {
    cpuUtil: alloc.cpuMillis > 0 ? Math.min(1, held.cpuMillis / alloc.cpuMillis) : 0,
    memUsedBytes: Math.min(alloc.memBytes, held.memBytes),
    gpus,
    powerWatts: Math.round(modelPowerWatts(ratedWatts, Math.min(1, busyShare(held.cpuMillis, gpuMilli, alloc))) * 10) / 10,
  };
}
