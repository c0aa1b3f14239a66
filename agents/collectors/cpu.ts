import { cpus } from 'node:os';

interface CpuTimes {
  idle: number;
  total: number;
}

function readTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** CPU busy share of the whole machine between two samples, from the kernel's per-CPU times. */
export class CpuCollector {
  private last = readTimes();

  /** Busy share 0..1 since the previous sample. */
  sample(): number {
    const now = readTimes();
    const total = now.total - this.last.total;
    const idle = now.idle - this.last.idle;
    this.last = now;
    return total > 0 ? Math.min(1, Math.max(0, 1 - idle / total)) : 0;
  }
}
