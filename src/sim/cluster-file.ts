import { loadDataFile } from '../files';
import { loadCarbonSeries } from '../green';
import { z } from 'zod';
import { dataClassSchema, labelsSchema, nodeSpecSchema, poolSchema, taintSchema, type NodeSpec, type Pool } from '../protocol';
import { IDLE_POWER_SHARE, capKwAt, powerCapsKwSchema } from '../metering/power';
import { HOUR_MS, hourOfDay } from '../time';

const GiB = 1024 ** 3;
const hourly = z.array(z.number().min(0)).length(24, 'must list 24 hourly values, 00:00 to 23:00');
const share = z.array(z.number().min(0).max(1)).length(24, 'must list 24 hourly shares between 0 and 1, 00:00 to 23:00');

/** One kind of node and how many of it the cluster has. */
const nodeTypeSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,23}$/, 'must be a short lower-case name such as hpc or a800'),
  pool: poolSchema,
  count: z.number().int().min(1).max(200_000),
  cpus: z.number().int().min(1).max(1024),
  memGiB: z.number().min(0).max(65_536).default(0),
  gpus: z.number().int().min(0).max(64).default(0),
  gpuModel: z.string().min(1).max(32).optional(),
  gpuMemGiB: z.number().min(0).max(1024).default(0),
  labels: labelsSchema.default({}),
  taints: z.array(taintSchema).max(32).default([]),
  securityLevel: dataClassSchema.default('internal'),
  ratedPowerWatts: z.number().int().min(0).max(1_000_000).optional(),
  /** Nodes per rack; racks alternate between the zones. */
  perRack: z.number().int().min(1).max(10_000).default(32),
  zones: z.array(z.string().min(1).max(63)).min(1).default(['default']),
});

/**
 * A cluster definition for the simulator (YAML): node types and counts, and the world around them —
 * how much of each zone's electricity is green hour by hour, its price, how nodes draw power and fail.
 * Hour 0 is the trace's time 0.
 */
export const clusterFileSchema = z.strictObject({
  name: z.string().min(1).max(64).default('cluster'),
  nodeTypes: z.array(nodeTypeSchema).min(1),
  power: z
    .strictObject({
      /** Share of rated power an idle node draws. */
      idleFraction: z.number().min(0).max(1).default(IDLE_POWER_SHARE),
      /** Rated power of nodes whose type does not say, per pool. */
      defaultRatedWatts: z.record(poolSchema, z.number().int().min(0)).optional(),
    })
    .default({ idleFraction: IDLE_POWER_SHARE }),
  green: z
    .strictObject({
      /** Share of green electricity by hour of day in every zone not listed under `zones`. */
      hourly: share.optional(),
      zones: z.record(z.string(), share).default({}),
    })
    .default({ zones: {} }),
  /** Electricity price by hour of day, per kWh (CNY). */
  pricePerKwh: hourly.optional(),
  /** Carbon intensity of grid electricity, gCO2/kWh (the part that is not green comes from the grid); `--carbon FILE` replaces it with a time series. */
  gridCarbonGPerKwh: z.number().min(0).max(2000).default(550),
  /** Power caps in kW per pool or zone (`zone:<name>`): a number, or 24 hourly values (a cap that follows the green supply). */
  powerCapsKw: powerCapsKwSchema.default({}),
  failures: z
    .strictObject({
      /** Mean time between failures of one node. */
      mtbfHours: z.number().positive(),
      /** How long a failed node stays down. */
      repairHours: z.number().positive(),
    })
    .optional(),
});
export type ClusterFile = z.infer<typeof clusterFileSchema>;

/**
 * Illustrative defaults for a north-western hub (wind at night, solar at midday): the green share of
 * electricity and a time-of-use tariff (valley 00–08, peak 08–11 and 18–22). Override them in the
 * cluster file with the real figures of a site.
 */
export const DEFAULT_GREEN_HOURLY = [0.42, 0.43, 0.44, 0.44, 0.43, 0.42, 0.44, 0.5, 0.58, 0.66, 0.72, 0.76, 0.78, 0.77, 0.74, 0.68, 0.6, 0.52, 0.46, 0.43, 0.42, 0.41, 0.41, 0.42];
export const DEFAULT_PRICE_HOURLY = [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.95, 0.95, 0.95, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.95, 0.95, 0.95, 0.95, 0.6, 0.6];
const DEFAULT_RATED_WATTS: Record<Pool, number> = { general: 500, intelligent: 5000, super: 800 };


/** The local hour of day at a virtual time (time 0 is midnight). */
/** The world a simulation runs in besides its nodes; every signal is a function of virtual time. */
export interface SimEnvironment {
  /** Share of a zone's electricity from its own wind and solar. */
  greenShareAt(zone: string, atMs: number): number;
  /** Carbon intensity of the grid, which supplies the rest, gCO2/kWh. */
  gridCarbonAt(atMs: number): number;
  pricePerKwhAt(atMs: number): number;
  /** Power cap in kW of a pool or `zone:<name>` at a time, if it has one. */
  powerCapKwAt(key: string, atMs: number): number | undefined;
  /** The signals change at most at every multiple of this. */
  stepMs: number;
  idleFraction: number;
  ratedWatts(node: NodeSpec): number;
  failures?: { mtbfHours: number; repairHours: number };
}

/** The grid's carbon intensity as a time series over virtual time, for `--carbon FILE`. */
export interface CarbonSignal {
  valueAt(atMs: number): number;
  stepMs: number;
}

/** A carbon-intensity file as a signal over virtual time, starting at `start` (default: its first point). */
export function carbonSignal(path: string, start: string | undefined): CarbonSignal & { startMs: number } {
  const series = loadCarbonSeries(path, { outside: 'clamp' });
  const startMs = start ? Date.parse(start) : series.startMs;
  if (!Number.isFinite(startMs)) throw new Error(`${start}: not a date`);
  return { valueAt: (t) => series.valueAt(startMs + t), stepMs: series.stepMs, startMs };
}

/** The environment of a cluster file (or the defaults), with the grid's intensity from `carbon` when given. */
export function environmentOf(file?: ClusterFile, carbon?: CarbonSignal): SimEnvironment {
  const rated = { ...DEFAULT_RATED_WATTS, ...file?.power.defaultRatedWatts };
  const price = file?.pricePerKwh ?? DEFAULT_PRICE_HOURLY;
  const caps = file?.powerCapsKw ?? {};
  const gridCarbon = file?.gridCarbonGPerKwh ?? 550;
  return {
    greenShareAt: (zone, atMs) => (file?.green.zones[zone] ?? file?.green.hourly ?? DEFAULT_GREEN_HOURLY)[hourOfDay(atMs)],
    gridCarbonAt: carbon ? (atMs) => carbon.valueAt(atMs) : () => gridCarbon,
    pricePerKwhAt: (atMs) => price[hourOfDay(atMs)],
    powerCapKwAt: (key, atMs) => {
      const cap = caps[key];
      return cap === undefined ? undefined : capKwAt(cap, atMs);
    },
    stepMs: Math.min(HOUR_MS, carbon?.stepMs ?? HOUR_MS),
    idleFraction: file?.power.idleFraction ?? IDLE_POWER_SHARE,
    ratedWatts: (node) => node.ratedPowerWatts ?? rated[node.pool],
    failures: file?.failures,
  };
}

/** Reads and validates a cluster file; errors name the file and the field. */
export function loadClusterFile(path: string): ClusterFile {
  return loadDataFile(path, clusterFileSchema);
}

/** The nodes a cluster file describes, named `<type>-<00000>`, racks filled in order. */
export function nodesOf(file: ClusterFile): NodeSpec[] {
  const nodes: NodeSpec[] = [];
  for (const t of file.nodeTypes) {
    for (let i = 0; i < t.count; i++) {
      const rack = Math.floor(i / t.perRack);
      nodes.push(
        nodeSpecSchema.parse({
          id: `${t.name}-${String(i).padStart(5, '0')}`,
          pool: t.pool,
          zone: t.zones[rack % t.zones.length],
          rack: `${t.name}-r${rack}`,
          labels: t.labels,
          taints: t.taints,
          capacity: { cpuMillis: t.cpus * 1000, memBytes: Math.round(t.memGiB * GiB), gpus: t.gpus, gpuMemBytes: Math.round(t.gpuMemGiB * GiB) },
          gpuModel: t.gpuModel,
          securityLevel: t.securityLevel,
          ratedPowerWatts: t.ratedPowerWatts,
        }),
      );
    }
  }
  return nodes;
}
