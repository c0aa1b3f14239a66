import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadClusterFile, nodesOf } from '../../src/sim/cluster-file';
import { parseGpuCsv, parseNodeList } from '../../src/sim/gpu-csv';
import { loadTrace } from '../../src/sim/sources';
import { parseSwf, swfMachine } from '../../src/sim/swf';

const swfLine = (fields: number[]) => fields.join(' ');
/** An SWF job line: id, submit, run time, allocated procs, requested procs, requested time, user; the rest -1. */
const job = (id: number, submit: number, run: number, alloc: number, req: number, reqTime: number, user = -1) =>
  swfLine([id, submit, -1, run, alloc, -1, -1, req, reqTime, -1, 1, user, -1, -1, -1, -1, -1, -1]);

describe('SWF', () => {
  test('the header describes the machine: MaxNodes nodes of MaxProcs / MaxNodes cores, 1 without MaxProcs', () => {
    expect(swfMachine({ maxNodes: 128, maxProcs: 512 })!.map((n) => n.capacity.cpuMillis)).toEqual(Array(128).fill(4000));
    expect(swfMachine({ maxNodes: 256 })!.length).toBe(256);
    expect(swfMachine({ maxNodes: 256 })![0]).toMatchObject({ pool: 'super', capacity: { cpuMillis: 1000 } });
    expect(swfMachine({ maxProcs: 64 })!.length).toBe(64);
    expect(swfMachine({})).toBeUndefined();
  });

  test('each job asks for its requested processors as 1-core tasks, with its requested time as walltime', () => {
    const text = ['; MaxNodes: 8', '; MaxProcs: 32', job(1, 10, 100, 4, 6, 300, 7), job(2, 20, 50, 3, -1, -1), job(3, 30, 500, 2, 2, 200), job(4, 40, -1, 2, 2, 10), job(5, 50, 10, -1, -1, 10), '1 2 3'].join('\n');
    const t = parseSwf(text, 'tiny.swf');
    expect(t.cluster).toHaveLength(8);
    expect(t.cluster![0].capacity.cpuMillis).toBe(4000);
    expect(t.processorLevel).toBe(true);
    expect(t.skipped).toEqual({ 'no run time': 1, 'no processor count': 1, 'malformed line': 1 });
    const [a, b, c] = t.jobs;
    expect(a.job).toMatchObject({ pool: 'super', tasks: 6, tenant: 'user-7', submittedAtMs: 10_000, walltimeMs: 300_000, task: { cpuMillis: 1000 } });
    expect(a.runMs).toBe(100_000);
    // No request: the allocated processors, and the run time as walltime.
    expect(b.job).toMatchObject({ tasks: 3, walltimeMs: 50_000 });
    // A run longer than its request is cut at the walltime, as a batch system would.
    expect(c.runMs).toBe(200_000);
  });

  test('the pinned lublin excerpt parses to 1,000 jobs on a 256-node machine', () => {
    const t = loadTrace('test/fixtures/lublin_256-first-1000.swf', { jobs: 0, nodes: 0, load: 0, seed: 1 });
    expect(t.jobs).toHaveLength(1000);
    expect(t.cluster).toHaveLength(256);
    expect(t.skipped).toEqual({});
    for (let i = 1; i < t.jobs.length; i++) expect(t.jobs[i].job.submittedAtMs).toBeGreaterThanOrEqual(t.jobs[i - 1].job.submittedAtMs);
  });
});

describe('GPU-cluster CSV', () => {
  test('openb columns: whole GPUs, GPU shares, CPU-only pods; the node list beside it is the cluster', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qy-csv-'));
    const pods = join(dir, 'openb_pod_list_test.csv');
    writeFileSync(
      pods,
      [
        'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time',
        'p0,12000,16384,1,1000,,LS,Running,0,100,0',
        'p1,6000,12288,1,460,,BE,Running,5,65,5',
        'p2,88000,327680,8,1000,V100M16|V100M32,Burstable,Succeeded,10,20,10',
        'p3,4000,8192,0,0,,BE,Running,20,30,20',
        'p4,4000,8192,0,0,,BE,Running,,30,',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'openb_node_list_test.csv'), ['sn,cpu_milli,memory_mib,gpu,model', 'n0,32000,262144,0,', 'n1,96000,786432,8,V100M16'].join('\n'));
    const t = loadTrace(pods, { jobs: 0, nodes: 0, load: 0, seed: 1 });
    expect(t.skipped).toEqual({ 'no submit time': 1 });
    expect(t.jobs.map((j) => [j.job.pool, j.job.task.gpus, j.job.task.gpuMilli, j.runMs])).toEqual([
      ['intelligent', 1, 0, 100_000],
      ['intelligent', 0, 460, 60_000],
      ['intelligent', 8, 0, 10_000],
      ['general', 0, 0, 10_000],
    ]);
    expect(t.jobs[2].job.constraints.gpuModels).toEqual(['V100M16', 'V100M32']);
    expect(t.jobs[1].job.priorityClass).toBe('best-effort');
    expect(t.cluster!.map((n) => [n.id, n.pool, n.gpuModel])).toEqual([
      ['n0', 'general', undefined],
      ['n1', 'intelligent', 'V100M16'],
    ]);
  });

  test('generic columns: submit_time, duration, gpus, cpus, user', () => {
    const t = parseGpuCsv(['submit_time,duration,gpus,cpus,user', '0,3600,2,16,alice', '60,60,0,4,bob'].join('\n'), 'generic.csv');
    expect(t.jobs.map((j) => [j.job.tenant, j.job.pool, j.job.task.gpus, j.job.task.cpuMillis, j.runMs])).toEqual([
      ['alice', 'intelligent', 2, 16_000, 3_600_000],
      ['bob', 'general', 0, 4000, 60_000],
    ]);
    expect(t.cluster).toBeUndefined();
  });

  test('a CSV without the needed columns is refused with the columns it lacks', () => {
    expect(() => parseGpuCsv('a,b\n1,2', 'bad.csv')).toThrow(/no column for submit, cpus, duration/);
    expect(() => parseNodeList('x,y\n1,2')).toThrow(/expected columns/);
  });
});

describe('cluster files', () => {
  test('the example cluster file is valid and builds its nodes', () => {
    const file = loadClusterFile('configs/sim/qingyang.yaml');
    const nodes = nodesOf(file);
    expect(nodes.length).toBe(file.nodeTypes.reduce((s, t) => s + t.count, 0));
    expect(new Set(nodes.map((n) => n.pool))).toEqual(new Set(['general', 'intelligent', 'super']));
  });

  test('a bad cluster file names the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qy-cluster-'));
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'nodeTypes:\n  - name: gen\n    pool: general\n    count: 0\n    cpus: 8\npricePerKwh: [1, 2]\n');
    expect(() => loadClusterFile(path)).toThrow(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: nodeTypes.0.count: .*; pricePerKwh: must list 24 hourly values`));
  });
});
