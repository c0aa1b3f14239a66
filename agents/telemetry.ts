import type { Heartbeat, NodeSpec, TaskPlacement } from '../src/protocol';
import { CpuCollector } from './collectors/cpu';
import { readGpus, type GpuReading } from './collectors/gpu';
import type { GreenSource } from './collectors/green';
import { memUsedBytes } from './collectors/memory';
import { PowerCollector } from './collectors/power';
import { modelledLoad, ratedWattsOf, type HeldResources } from '../src/metering/power';

/** The live figures a heartbeat carries. */
export type NodeSample = Pick<Heartbeat, 'cpuUtil' | 'memUsedBytes' | 'gpus' | 'powerWatts' | 'greenShare' | 'powerSource'>;

/** Where a node's heartbeat figures come from. */
export interface NodeTelemetry {
  sample(nowMs: number, running: readonly TaskPlacement[]): Promise<NodeSample>;
}

/** How the host's figures are read: whether there are GPUs to ask nvidia-smi about, and how often. */
export interface HostTelemetryOptions {
  /** The node has GPUs: read them with nvidia-smi (a process each time). Without, nvidia-smi is never run. */
  gpus: boolean;
  /** A sample taken less than this long ago is reused (a task's end right after a heartbeat); default 250 ms. */
  reuseWithinMs?: number;
  /** GPU readings are refreshed at most this often (each costs a process); default 5 s. */
  gpuRefreshMs?: number;
  /** Reads GPUs (nvidia-smi; replaced in tests). */
  readGpus?: () => Promise<GpuReading[]>;
}

/**
 * The machine the agent runs on: CPU from /proc/stat, memory from the OS, GPUs from nvidia-smi (only when the
 * node has GPUs, at most every few seconds), power from RAPL/NVML or the model. Cheap enough to run at every
 * heartbeat and at the end of every task: an idle agent must cost next to nothing.
 */
export class HostTelemetry implements NodeTelemetry {
  private readonly cpu = new CpuCollector();
  private readonly power: PowerCollector;
  private last: { atMs: number; sample: NodeSample } | undefined;
  private gpus: { atMs: number; readings: GpuReading[] } | undefined;

  constructor(
    ratedPowerWatts: number,
    private readonly green: GreenSource,
    private readonly options: HostTelemetryOptions = { gpus: true },
  ) {
    this.power = new PowerCollector(ratedPowerWatts);
  }

  async init(nowMs: number): Promise<void> {
    await this.power.init(nowMs);
  }

  async sample(nowMs: number): Promise<NodeSample> {
    if (this.last && nowMs >= this.last.atMs && nowMs - this.last.atMs < (this.options.reuseWithinMs ?? 250)) return { ...this.last.sample, greenShare: this.green.shareAt(nowMs) };
    const cpuUtil = this.cpu.sample();
    const gpus = await this.readGpus(nowMs);
    const power = await this.power.sample(
      nowMs,
      cpuUtil,
      gpus.flatMap((g) => (g.powerWatts === undefined ? [] : [g.powerWatts])),
    );
    const sample: NodeSample = {
      cpuUtil,
      memUsedBytes: memUsedBytes(),
      gpus: gpus.map((g) => ({ index: g.index, util: g.util, memUsedBytes: g.memUsedBytes })),
      powerWatts: Math.round(power.watts * 10) / 10,
      powerSource: power.source,
      greenShare: this.green.shareAt(nowMs),
    };
    this.last = { atMs: nowMs, sample };
    return sample;
  }

  private async readGpus(nowMs: number): Promise<GpuReading[]> {
    if (!this.options.gpus) return [];
    if (this.gpus && nowMs >= this.gpus.atMs && nowMs - this.gpus.atMs < (this.options.gpuRefreshMs ?? 5_000)) return this.gpus.readings;
    const readings = await (this.options.readGpus ?? readGpus)();
    this.gpus = { atMs: nowMs, readings };
    return readings;
  }
}

/**
 * A simulated node: busy in proportion to what its running tasks were allocated, power from the
 * utilisation model of its rated power, green share from the agent's source.
 */
export class SimTelemetry implements NodeTelemetry {
  constructor(
    private readonly spec: NodeSpec,
    private readonly green: GreenSource,
  ) {}

  async sample(nowMs: number, running: readonly TaskPlacement[]): Promise<NodeSample> {
    const alloc = this.spec.allocatable ?? this.spec.capacity;
    const held: HeldResources = { cpuMillis: 0, memBytes: 0, gpuMilliByIndex: new Array<number>(alloc.gpus).fill(0) };
    for (const t of running) {
      held.cpuMillis += t.cpuMillis;
      held.memBytes += t.memBytes;
      for (const i of t.gpuIndices) if (i < alloc.gpus) held.gpuMilliByIndex[i] += t.gpuMilliEach;
    }
    // Busy as metering charges it: the shares of the node its tasks hold.
    return { ...modelledLoad(alloc, held, ratedWattsOf(this.spec)), powerSource: 'simulated', greenShare: this.green.shareAt(nowMs) };
  }

}
