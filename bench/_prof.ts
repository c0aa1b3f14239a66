import { ClusterState, DEFAULT_POLICY, placeJob, prepareJob } from '../src/core';
import { mixedCluster, mixedWorkload } from '../src/sim/synthetic';
import { seededRng } from '../src/sim/rng';
import { MinHeap } from '../src/sim/min-heap';
const N = Number(process.argv[2] ?? 10000), J = Number(process.argv[3] ?? 200000);
const specs = mixedCluster(N);
const cluster = new ClusterState();
for (const s of specs) cluster.upsertNode(s);
const next = mixedWorkload(seededRng(42), seededRng(43), specs, { load: 1.2 });
const ends = new MinHeap<string>();
const cats = new Map<string, number[]>();
const evals = new Map<string, number>();
for (let i = 0; i < J; i++) {
  const { job, runMs } = next();
  while (ends.peekKey() <= job.submittedAtMs) cluster.release(ends.pop()!);
  const t0 = process.hrtime.bigint();
  const r = placeJob(cluster, prepareJob(job, DEFAULT_POLICY), DEFAULT_POLICY);
  if (r.ok) cluster.reserve(r.placement);
  const ns = Number(process.hrtime.bigint() - t0);
  if (r.ok) ends.push(job.submittedAtMs + runMs, job.id);
  const k = `${job.pool}/${job.tasks > 1 ? 'gang' : job.task.gpuMilli ? 'share' : 'single'}/${job.constraints.gpuModels.length ? 'model' : ''}/${r.ok ? 'ok' : 'fail'}`;
  (cats.get(k) ?? cats.set(k, []).get(k)!).push(ns);
  evals.set(k, (evals.get(k) ?? 0) + r.nodesEvaluated);
}
const rows = [...cats].map(([k, v]) => { v.sort((a, b) => a - b); const sum = v.reduce((a, b) => a + b, 0); return { k, n: v.length, meanUs: +(sum / v.length / 1000).toFixed(1), p99Us: +(v[Math.floor(v.length * 0.99)] / 1000).toFixed(1), shareOfTime: +(sum / 1e6).toFixed(0), evals: +((evals.get(k)!) / v.length).toFixed(1) }; });
rows.sort((a, b) => b.shareOfTime - a.shareOfTime);
console.table(rows);
