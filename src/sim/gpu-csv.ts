import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { columnIndex, parseTable } from '../files';
import { GPU_MILLI_PER_GPU, nodeSpecSchema, type NodeSpec } from '../protocol';
import { inSubmitOrder, skip, traceJob, traceJobId, type Trace } from './trace';
import type { TimedJob } from './synthetic';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** Nodes per rack of a cluster built from a node list. */
const NODES_PER_RACK = 16;

/**
 * The columns a GPU-cluster CSV trace may use, first match wins. Times are in seconds from the start of
 * the trace. The Alibaba openb pod list (cluster-trace-gpu-v2023) uses the second name of each pair.
 */
const COLUMNS = {
  submit: ['submit_time', 'creation_time', 'submit'],
  duration: ['duration', 'run_time', 'runtime'],
  end: ['end_time', 'deletion_time'],
  gpus: ['gpus', 'num_gpu'],
  gpuMilli: ['gpu_milli'],
  cpus: ['cpus', 'cores'],
  cpuMilli: ['cpu_milli'],
  memMiB: ['memory_mib', 'mem_mib'],
  memGiB: ['memory_gib', 'mem_gib'],
  user: ['user', 'tenant', 'user_id'],
  gpuModel: ['gpu_model', 'gpu_spec'],
  qos: ['qos', 'priority_class'],
} as const;
type Column = keyof typeof COLUMNS;

/** Quality-of-service classes of the openb trace, as priority classes. */
const QOS_PRIORITY: Record<string, string> = { LS: 'urgent', Guaranteed: 'urgent', Burstable: 'normal', BE: 'best-effort' };

/**
 * Parses a CSV GPU-cluster trace: one job per row with its submit time, duration (or end time), GPUs
 * (whole, or a share of one GPU in milli-GPUs), CPUs and user. Jobs with GPUs go to the `intelligent`
 * pool, the others to `general`. Needs a header row naming the columns (see COLUMNS).
 */
export function parseGpuCsv(text: string, name: string): Trace {
  const { header, rows } = parseTable(text, name);
  const col = Object.fromEntries(Object.entries(COLUMNS).map(([key, names]) => [key, columnIndex(header, names)])) as Record<Column, number>;
  const missing = (['submit', 'cpus'] as const).filter((c) => col[c] < 0 && !(c === 'cpus' && col.cpuMilli >= 0));
  if (col.duration < 0 && col.end < 0) missing.push('duration' as never);
  if (missing.length > 0) throw new Error(`${name}: no column for ${missing.join(', ')} (header: ${header.join(',')})`);
  const jobs: TimedJob[] = [];
  const skipped: Record<string, number> = {};
  // Row numbers count from the first after the header, as the job ids always have.
  for (const [i, cells] of rows.entries()) {
    const r = i + 1;
    const num = (c: Column) => (col[c] >= 0 && (cells[col[c]] ?? '') !== '' ? Number(cells[col[c]]) : undefined);
    const text = (c: Column) => (col[c] >= 0 ? (cells[col[c]] ?? '') : '');
    const submitS = num('submit');
    const durationS = num('duration') ?? (num('end') !== undefined && submitS !== undefined ? num('end')! - submitS : undefined);
    const cpuMillis = num('cpuMilli') ?? (num('cpus') !== undefined ? Math.round(num('cpus')! * 1000) : undefined);
    if (submitS === undefined || !Number.isFinite(submitS) || submitS < 0) {
      skip(skipped, 'no submit time');
      continue;
    }
    if (durationS === undefined || !Number.isFinite(durationS) || durationS < 0) {
      skip(skipped, 'no duration');
      continue;
    }
    if (!cpuMillis || !(cpuMillis > 0)) {
      skip(skipped, 'no CPU request');
      continue;
    }
    const gpus = num('gpus') ?? 0;
    const gpuMilli = num('gpuMilli') ?? GPU_MILLI_PER_GPU;
    const share = gpus === 1 && gpuMilli > 0 && gpuMilli < GPU_MILLI_PER_GPU;
    const memBytes = num('memMiB') !== undefined ? num('memMiB')! * MiB : (num('memGiB') ?? 0) * GiB;
    jobs.push(
      traceJob({
        id: traceJobId(basename(name).replace(/\.csv$/, ''), r),
        tenant: text('user') || 'default',
        pool: gpus > 0 ? 'intelligent' : 'general',
        submittedAtMs: Math.round(submitS * 1000),
        runMs: Math.round(durationS * 1000),
        task: { cpuMillis, memBytes: Math.round(memBytes), gpus: share ? 0 : gpus, gpuMilli: share ? gpuMilli : 0 },
        priorityClass: QOS_PRIORITY[text('qos')] ?? 'normal',
        gpuModels: text('gpuModel') ? text('gpuModel').split('|') : undefined,
      }),
    );
  }
  return { name, jobs: inSubmitOrder(jobs), skipped };
}

/** The node list published beside a pod list (`..._pod_list_...csv` → `..._node_list_...csv`), if present. */
export function nodeListBeside(podList: string): string | undefined {
  const dir = dirname(podList);
  const base = basename(podList);
  if (!base.includes('_pod_list_')) return undefined;
  const prefix = base.slice(0, base.indexOf('_pod_list_'));
  const candidates = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(`${prefix}_node_list_`) && f.endsWith('.csv')) : [];
  return candidates.length > 0 ? join(dir, candidates.sort()[0]) : undefined;
}

/**
 * A node list (`sn,cpu_milli,memory_mib,gpu,model`) as a cluster: nodes with GPUs in the `intelligent`
 * pool, the others in `general`.
 */
export function parseNodeList(text: string, name = 'node list'): NodeSpec[] {
  const { header, rows } = parseTable(text, name);
  const [sn, cpu, mem, gpu, model] = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'].map((column) => columnIndex(header, [column]));
  if ([sn, cpu, mem, gpu].some((i) => i < 0)) throw new Error(`${name}: expected columns sn,cpu_milli,memory_mib,gpu,model (header: ${header.join(',')})`);
  return rows.map((c, i) => {
    const gpus = Number(c[gpu]);
    return nodeSpecSchema.parse({
      id: c[sn],
      pool: gpus > 0 ? 'intelligent' : 'general',
      rack: `rack-${Math.floor(i / NODES_PER_RACK)}`,
      capacity: { cpuMillis: Number(c[cpu]), memBytes: Number(c[mem]) * MiB, gpus },
      gpuModel: gpus > 0 && model >= 0 && c[model] ? c[model] : undefined,
    });
  });
}
