import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

interface CpuTimes {
  idle: number;
  total: number;
}

/**
 * Busy and total time of all CPUs from the first line of /proc/stat (`cpu  user nice system idle iowait irq
 * softirq steal …`, in clock ticks), exported for tests. Undefined when the line is not there.
 */
export function parseProcStat(text: string): CpuTimes | undefined {
  const line = text.slice(0, text.indexOf('\n'));
  if (!line.startsWith('cpu ')) return undefined;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return undefined;
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  return { idle: idle + iowait, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/**
 * One read of /proc/stat (tens of microseconds) rather than os.cpus(), which also reads every CPU's model and
 * frequency; os.cpus() where /proc is not there.
 */
function readTimes(): CpuTimes {
  try {
    const times = parseProcStat(readFileSync('/proc/stat', 'latin1'));
    if (times) return times;
  } catch {
    // not Linux
  }
  let idle = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** CPU busy share of the whole machine between two samples, from the kernel's CPU times. */
export class CpuCollector {
  private last: CpuTimes;

  constructor(private readonly read: () => CpuTimes = readTimes) {
    this.last = read();
  }

  /** Busy share 0..1 since the previous sample. */
  sample(): number {
    const now = this.read();
    const total = now.total - this.last.total;
    const idle = now.idle - this.last.idle;
    this.last = now;
    return total > 0 ? Math.min(1, Math.max(0, 1 - idle / total)) : 0;
  }
}
