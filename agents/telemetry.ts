import { GPU_MILLI_PER_GPU, type Heartbeat, type NodeSpec, type TaskPlacement } from '../src/protocol';
import { CpuCollector } from './collectors/cpu';
import { readGpus } from './collectors/gpu';
import type { GreenSource } from './collectors/green';
import { memUsedBytes } from './collectors/memory';
import { PowerCollector, modelPowerWatts } from './collectors/power';
import { nodeShareOf } from '../src/metering/attribution';
import { ratedWattsOf } from '../src/metering/power';

/** The live figures a heartbeat carries. */
export type NodeSample = Pick<Heartbeat, 'cpuUtil' | 'memUsedBytes' | 'gpus' | 'powerWatts' | 'greenShare' | 'powerSource'>;

/** Where a node's heartbeat figures come from. */
export interface NodeTelemetry {
  sample(nowMs: number, running: readonly TaskPlacement[]): Promise<NodeSample>;
}

/** The machine the agent runs on: CPU and memory from the OS, GPUs from nvidia-smi, power from RAPL/NVML or the model. */
export class HostTelemetry implements NodeTelemetry {
  private readonly cpu = new CpuCollector();
  private readonly power: PowerCollector;

  constructor(
    ratedPowerWatts: number,
    private readonly green: GreenSource,
  ) {
    this.power = new PowerCollector(ratedPowerWatts);
  }

  async init(nowMs: number): Promise<void> {
    await this.power.init(nowMs);
  }

  async sample(nowMs: number): Promise<NodeSample> {
    const cpuUtil = this.cpu.sample();
    const gpus = await readGpus();
    const power = await this.power.sample(
      nowMs,
      cpuUtil,
      gpus.flatMap((g) => (g.powerWatts === undefined ? [] : [g.powerWatts])),
    );
    return {
      cpuUtil,
      memUsedBytes: memUsedBytes(),
      gpus: gpus.map((g) => ({ index: g.index, util: g.util, memUsedBytes: g.memUsedBytes })),
      powerWatts: Math.round(power.watts * 10) / 10,
      powerSource: power.source,
      greenShare: this.green.shareAt(nowMs),
    };
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
    let cpuMillis = 0;
    let memBytes = 0;
    const gpuMilli = new Array<number>(alloc.gpus).fill(0);
    for (const t of running) {
      cpuMillis += t.cpuMillis;
      memBytes += t.memBytes;
      for (const i of t.gpuIndices) if (i < gpuMilli.length) gpuMilli[i] += t.gpuMilliEach;
    }
    const cpuUtil = alloc.cpuMillis > 0 ? Math.min(1, cpuMillis / alloc.cpuMillis) : 0;
    // Busy as metering charges it: the shares of the node its tasks hold.
    const busy = Math.min(1, running.reduce((sum, t) => sum + nodeShareOf(t, alloc), 0));
    return {
      cpuUtil,
      memUsedBytes: Math.min(alloc.memBytes, memBytes),
      gpus: gpuMilli.map((m, index) => ({ index, util: Math.min(1, m / GPU_MILLI_PER_GPU), memUsedBytes: Math.round((Math.min(1, m / GPU_MILLI_PER_GPU) * alloc.gpuMemBytes) / 2) })),
      powerWatts: Math.round(modelPowerWatts(ratedWattsOf(this.spec), busy) * 10) / 10,
      powerSource: 'simulated',
      greenShare: this.green.shareAt(nowMs),
    };
  }
}
