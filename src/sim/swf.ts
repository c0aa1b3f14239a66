import { nodeSpecSchema, type NodeSpec } from '../protocol';
import { inSubmitOrder, skip, traceJob, traceJobId, type Trace } from './trace';
import type { TimedJob } from './synthetic';

/** The header fields of a Standard Workload Format file that describe the machine. */
export interface SwfHeader {
  maxNodes?: number;
  maxProcs?: number;
  [key: string]: string | number | undefined;
}

/** Nodes per rack in the machine built from an SWF header (racks only matter to gang placement). */
const SWF_NODES_PER_RACK = 32;

/**
 * Parses a trace in the Standard Workload Format of the Parallel Workloads Archive
 * (https://www.cs.huji.ac.il/labs/parallel/workload/swf.html): `;` header lines, then one job per line
 * with 18 fields. Each job asks for its requested processors (the allocated ones when the request is
 * `-1`), each processor one 1-core task of a gang in the `super` pool; its walltime is its requested time
 * (its run time when that is `-1`), and it runs for its run time, capped at the walltime as a batch
 * system would. Jobs with no processors or no run time are skipped and counted.
 */
export function parseSwf(text: string, name: string): Trace & { header: SwfHeader } {
  const header: SwfHeader = {};
  const jobs: TimedJob[] = [];
  const skipped: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith(';')) {
      const m = /^;\s*([A-Za-z]+):\s*(.*)$/.exec(line);
      if (m) header[lowerFirst(m[1])] = /^-?\d+$/.test(m[2].trim()) ? Number(m[2].trim()) : m[2].trim();
      continue;
    }
    const f = line.split(/\s+/).map(Number);
    if (f.length < 18 || f.some((x) => !Number.isFinite(x))) {
      skip(skipped, 'malformed line');
      continue;
    }
    const [id, submitS, , runS, allocProcs, , , reqProcs, reqTimeS, , , user] = f;
    const procs = reqProcs > 0 ? reqProcs : allocProcs;
    if (!(procs > 0)) {
      skip(skipped, 'no processor count');
      continue;
    }
    if (!(runS >= 0)) {
      skip(skipped, 'no run time');
      continue;
    }
    const walltimeS = reqTimeS > 0 ? reqTimeS : Math.max(1, runS);
    jobs.push(
      traceJob({
        id: traceJobId('swf', id),
        tenant: user > 0 ? `user-${user}` : 'swf',
        pool: 'super',
        submittedAtMs: Math.max(0, submitS) * 1000,
        runMs: Math.min(runS, walltimeS) * 1000,
        walltimeMs: walltimeS * 1000,
        task: { cpuMillis: 1000 },
        tasks: procs,
      }),
    );
  }
  return { name, header, jobs: inSubmitOrder(jobs), skipped, cluster: swfMachine(header), processorLevel: true };
}

/**
 * The machine an SWF header describes: `MaxNodes` nodes in the `super` pool with `MaxProcs / MaxNodes`
 * cores each (1 when `MaxProcs` is absent); `MaxProcs` alone gives that many 1-core nodes.
 */
export function swfMachine(header: SwfHeader): NodeSpec[] | undefined {
  const nodes = header.maxNodes ?? header.maxProcs;
  if (!nodes || nodes < 1) return undefined;
  const cores = header.maxNodes && header.maxProcs ? Math.max(1, Math.floor(header.maxProcs / header.maxNodes)) : 1;
  return Array.from({ length: nodes }, (_, i) =>
    nodeSpecSchema.parse({
      id: `swf-${String(i).padStart(5, '0')}`,
      pool: 'super',
      rack: `swf-r${Math.floor(i / SWF_NODES_PER_RACK)}`,
      capacity: { cpuMillis: cores * 1000, memBytes: 0 },
    }),
  );
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
