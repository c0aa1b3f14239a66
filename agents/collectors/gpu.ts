import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One GPU as nvidia-smi reports it. */
export interface GpuReading {
  index: number;
  name: string;
  memTotalBytes: number;
  memUsedBytes: number;
  util: number;
  powerWatts: number | undefined;
}

const MiB = 1024 * 1024;
const QUERY = 'index,name,memory.total,memory.used,utilization.gpu,power.draw';

/**
 * Reads GPUs with `nvidia-smi --query-gpu=… --format=csv,noheader,nounits`. On a machine without NVIDIA
 * GPUs (no nvidia-smi, or it fails) it reports none; the node then registers without GPUs.
 */
export async function readGpus(): Promise<GpuReading[]> {
  try {
    const { stdout } = await run('nvidia-smi', [`--query-gpu=${QUERY}`, '--format=csv,noheader,nounits'], { timeout: 5_000 });
    return parseNvidiaSmi(stdout);
  } catch {
    return [];
  }
}

/** Parses nvidia-smi's CSV output (exported for tests). Values it cannot read ("[N/A]") become 0 or undefined. */
export function parseNvidiaSmi(stdout: string): GpuReading[] {
  const num = (s: string | undefined) => {
    const n = Number((s ?? '').trim());
    return Number.isFinite(n) ? n : undefined;
  };
  return stdout
    .split('\n')
    .map((line) => line.split(','))
    .filter((cols) => cols.length >= 6 && num(cols[0]) !== undefined)
    .map((cols) => ({
      index: num(cols[0])!,
      name: cols[1].trim(),
      memTotalBytes: (num(cols[2]) ?? 0) * MiB,
      memUsedBytes: (num(cols[3]) ?? 0) * MiB,
      util: Math.min(1, (num(cols[4]) ?? 0) / 100),
      powerWatts: num(cols[5]),
    }));
}
