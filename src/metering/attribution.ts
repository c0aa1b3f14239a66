import { GPU_MILLI_PER_GPU, type NodeResources, type TaskPlacement, type UsageSegment } from '../protocol';
import { HOUR_MS } from '../time';

/** Share of a GPU server's power its GPUs draw; the rest goes with the cores. */
export const GPU_POWER_WEIGHT = 0.8;
const MiB = 1024 ** 2;

/**
 * The share of a node's power a task is charged for: its share of the cores on a CPU node; on a GPU node
 * its share of the GPUs weighted by GPU_POWER_WEIGHT plus its share of the cores. A task that holds its
 * node whole (the super pool) was given all of it, so it is charged all of it. What no task holds (idle
 * capacity) is charged to nobody.
 */
export function nodeShareOf(task: Pick<TaskPlacement, 'cpuMillis' | 'gpuIndices' | 'gpuMilliEach'>, alloc: Pick<NodeResources, 'cpuMillis' | 'gpus'>): number {
  return busyShare(task.cpuMillis, task.gpuIndices.length * task.gpuMilliEach, alloc);
}

/** The same share for any amount of cores and milli-GPUs: of one task, or all a node has allocated. */
export function busyShare(cpuMillis: number, gpuMilli: number, alloc: Pick<NodeResources, 'cpuMillis' | 'gpus'>): number {
  const cpuShare = alloc.cpuMillis > 0 ? Math.min(1, cpuMillis / alloc.cpuMillis) : 0;
  if (alloc.gpus === 0) return cpuShare;
  const gpuShare = Math.min(1, gpuMilli / (alloc.gpus * GPU_MILLI_PER_GPU));
  return GPU_POWER_WEIGHT * gpuShare + (1 - GPU_POWER_WEIGHT) * cpuShare;
}

/** What a meter needs to know of a task and its node. */
export interface MeteredTask {
  placement: TaskPlacement;
  alloc: Pick<NodeResources, 'cpuMillis' | 'gpus'>;
  gpuModel?: string;
  startMs: number;
}

interface Hour {
  energyWh: number;
  greenWh: number;
}

/**
 * Meters one running task from its node's power samples: each sample's power (the average since the last
 * sample, or the reading at the sample) times the task's share of the node, over the time since the last
 * sample, split at clock hours; green energy from the node's green share at the sample. Cores, GPUs and
 * memory are what the task was allocated, over the time it ran in each hour.
 */
export class TaskMeter {
  private readonly hours = new Map<number, Hour>();
  private lastMs: number;
  private lastWatts: number | undefined;
  private lastGreen = 0;
  private readonly share: number;

  constructor(private readonly task: MeteredTask) {
    this.lastMs = task.startMs;
    this.share = nodeShareOf(task.placement, task.alloc);
  }

  /** A power sample of the task's node. */
  sample(atMs: number, nodeWatts: number, greenShare: number): void {
    this.accrue(atMs, nodeWatts, greenShare);
    this.lastWatts = nodeWatts;
    this.lastGreen = greenShare;
  }

  /** The task ended at `endMs`: its use per clock hour, in integers (energy rounded to the milliwatt-hour). */
  finish(endMs: number): UsageSegment[] {
    if (this.lastWatts !== undefined) this.accrue(endMs, this.lastWatts, this.lastGreen);
    const { placement } = this.task;
    const gpuMilli = placement.gpuIndices.length * placement.gpuMilliEach;
    const segments: UsageSegment[] = [];
    for (let hour = Math.floor(this.task.startMs / HOUR_MS) * HOUR_MS; hour < endMs; hour += HOUR_MS) {
      const runMs = Math.max(0, Math.min(endMs, hour + HOUR_MS) - Math.max(this.task.startMs, hour));
      const energy = this.hours.get(hour) ?? { energyWh: 0, greenWh: 0 };
      if (runMs === 0 && energy.energyWh === 0) continue;
      const energyMilliWh = Math.round(energy.energyWh * 1000);
      segments.push({
        hourStartMs: hour,
        runMs,
        cpuMilliSeconds: Math.round((placement.cpuMillis * runMs) / 1000),
        gpuMilliSeconds: gpuMilli > 0 ? { [this.task.gpuModel ?? 'unknown']: Math.round((gpuMilli * runMs) / 1000) } : {},
        memMiBSeconds: Math.round((placement.memBytes / MiB) * (runMs / 1000)),
        energyMilliWh,
        greenMilliWh: Math.min(energyMilliWh, Math.round(energy.greenWh * 1000)),
        carbonMg: 0,
      });
    }
    return segments;
  }

  /** Charges `watts` from the last sample to `toMs`, split at clock hours. */
  private accrue(toMs: number, watts: number, greenShare: number): void {
    let from = this.lastMs;
    while (from < toMs) {
      const hour = Math.floor(from / HOUR_MS) * HOUR_MS;
      const until = Math.min(toMs, hour + HOUR_MS);
      const wh = (watts * this.share * (until - from)) / HOUR_MS;
      const h = this.hours.get(hour) ?? { energyWh: 0, greenWh: 0 };
      h.energyWh += wh;
      h.greenWh += wh * greenShare;
      this.hours.set(hour, h);
      from = until;
    }
    this.lastMs = Math.max(this.lastMs, toMs);
  }
}
