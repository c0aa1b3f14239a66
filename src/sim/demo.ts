/**
 * The quick-start demo of the placement core: a small simulated cluster of the three pools receives a
 * sample workload in virtual time; the demo prints every placement, every wait with its reason, and a
 * summary per pool. No services are needed.
 */
import { ClusterState, DEFAULT_POLICY, JobQueue, formatFailure, placeJob, prepareJob, type SchedJob } from '../core';
import { POOLS } from '../protocol';
import { MinHeap } from './min-heap';
import { seededRng } from './rng';
import { mixedCluster, mixedWorkload } from './synthetic';

const NODES = 40;
const JOBS = 60;
const rng = seededRng(7);

const specs = mixedCluster(NODES);
const cluster = new ClusterState();
for (const spec of specs) cluster.upsertNode(spec);
const next = mixedWorkload(rng, seededRng(8), specs, { load: 1.3, intervalMs: 2000 });

const queue = new JobQueue();
const finishing = new MinHeap<string>();
const runMsOf = new Map<string, number>();
const lastReason = new Map<string, string>();
const arrivals = Array.from({ length: JOBS }, () => next());
let placed = 0;

const seconds = (ms: number) => `${(ms / 1000).toFixed(0).padStart(6)}s`;

function describe(job: SchedJob): string {
  const t = job.task;
  const what = t.gpus > 0 ? `${t.gpus} GPU` : t.gpuMilli > 0 ? `${t.gpuMilli}m GPU` : `${t.cpuMillis / 1000} cores`;
  return `${job.id} (${job.pool}, ${job.tasks > 1 ? `${job.tasks} × ` : ''}${what}, ${job.tenant}, ${job.priorityClass})`;
}

function schedule(nowMs: number): void {
  for (const job of queue.toSortedArray()) {
    const result = placeJob(cluster, prepareJob(job, DEFAULT_POLICY), DEFAULT_POLICY);
    if (result.ok) {
      cluster.reserve(result.placement);
      queue.remove(job.id);
      placed++;
      finishing.push(nowMs + runMsOf.get(job.id)!, job.id);
      const where = result.placement.tasks
        .slice(0, 4)
        .map((t) => `${t.nodeId}${t.gpuIndices.length > 0 ? `[gpu ${t.gpuIndices.join(',')}${t.gpuMilliEach < 1000 ? ` @${t.gpuMilliEach}m` : ''}]` : ''}`)
        .join(' ');
      const more = result.placement.tasks.length > 4 ? ` … +${result.placement.tasks.length - 4} tasks` : '';
      console.log(`${seconds(nowMs)}  placed   ${describe(job)} on ${where}${more}`);
    } else if (result.never) {
      queue.remove(job.id);
      console.log(`${seconds(nowMs)}  rejected ${describe(job)}: ${formatFailure(result)}`);
    } else {
      const reason = formatFailure(result);
      if (lastReason.get(job.id) !== reason) console.log(`${seconds(nowMs)}  waiting  ${describe(job)}: ${reason}`);
      lastReason.set(job.id, reason);
    }
  }
}

console.log(`Qingyang scheduler demo: ${NODES} simulated nodes, ${JOBS} jobs in virtual time\n`);
for (const pool of POOLS) {
  const s = cluster.poolSummary(pool);
  console.log(`  ${pool.padEnd(12)} ${s.nodes.ready} nodes, ${s.allocatable.cpuMillis / 1000} cores, ${s.allocatable.gpus} GPUs`);
}
console.log('');

let arrival = 0;
while (arrival < arrivals.length || finishing.size > 0) {
  const nextArrival = arrival < arrivals.length ? arrivals[arrival].job.submittedAtMs : Infinity;
  const nowMs = Math.min(nextArrival, finishing.peekKey());
  while (finishing.peekKey() <= nowMs) {
    const jobId = finishing.pop()!;
    cluster.release(jobId);
    console.log(`${seconds(nowMs)}  finished ${jobId}`);
  }
  while (arrival < arrivals.length && arrivals[arrival].job.submittedAtMs <= nowMs) {
    const { job, runMs } = arrivals[arrival++];
    queue.push(job);
    runMsOf.set(job.id, Math.min(runMs, 600_000));
  }
  schedule(nowMs);
  if (finishing.size === 0 && arrival >= arrivals.length) break;
}

console.log(`\n${placed}/${JOBS} jobs ran; ${queue.size} still waiting.`);
for (const job of queue.toSortedArray()) console.log(`  ${describe(job)}: ${lastReason.get(job.id) ?? 'not tried'}`);
console.log('\nNext: `npm test` runs the test suite; `npm run bench:placement` measures the placement core.');
