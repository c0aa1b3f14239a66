import { readFile, readdir } from 'node:fs/promises';
import { modelPowerWatts } from '../../src/metering/power';

export { IDLE_POWER_SHARE, modelPowerWatts } from '../../src/metering/power';

/** A power figure and where it came from. */
export interface PowerReading {
  watts: number;
  source: 'rapl' | 'nvml' | 'model';
}

interface RaplZone {
  energyPath: string;
  maxRangeUj: number;
  lastUj: number;
}

const POWERCAP = '/sys/class/powercap';

/**
 * Node power: CPU packages from RAPL (`/sys/class/powercap/intel-rapl:N/energy_uj`, differences over
 * time, wrap-around handled) when readable, GPUs from nvidia-smi's power.draw; otherwise a model from
 * utilisation and rated power.
 */
export class PowerCollector {
  private zones: RaplZone[] = [];
  private lastAtMs = 0;

  constructor(private readonly ratedWatts: number) {}

  async init(nowMs: number): Promise<void> {
    let names: string[] = [];
    try {
      names = (await readdir(POWERCAP)).filter((n) => /^intel-rapl:\d+$/.test(n));
    } catch {
      return;
    }
    for (const name of names) {
      try {
        const energyPath = `${POWERCAP}/${name}/energy_uj`;
        const lastUj = Number(await readFile(energyPath, 'utf8'));
        const maxRangeUj = Number(await readFile(`${POWERCAP}/${name}/max_energy_range_uj`, 'utf8'));
        if (Number.isFinite(lastUj) && Number.isFinite(maxRangeUj)) this.zones.push({ energyPath, maxRangeUj, lastUj });
      } catch {
        // Not readable (often root-only): the model takes over.
      }
    }
    this.lastAtMs = nowMs;
  }

  async sample(nowMs: number, cpuUtil: number, gpuWatts: number[]): Promise<PowerReading> {
    const gpuTotal = gpuWatts.reduce((a, b) => a + b, 0);
    const elapsedS = (nowMs - this.lastAtMs) / 1000;
    if (this.zones.length > 0 && elapsedS > 0) {
      let joules = 0;
      for (const zone of this.zones) {
        const uj = Number(await readFile(zone.energyPath, 'utf8').catch(() => String(zone.lastUj)));
        const delta = uj >= zone.lastUj ? uj - zone.lastUj : uj + zone.maxRangeUj - zone.lastUj;
        zone.lastUj = uj;
        joules += delta / 1e6;
      }
      this.lastAtMs = nowMs;
      return { watts: joules / elapsedS + gpuTotal, source: 'rapl' };
    }
    this.lastAtMs = nowMs;
    if (gpuWatts.length > 0) return { watts: modelPowerWatts(this.ratedWatts * 0.2, cpuUtil) + gpuTotal, source: 'nvml' };
    return { watts: modelPowerWatts(this.ratedWatts, cpuUtil), source: 'model' };
  }
}
