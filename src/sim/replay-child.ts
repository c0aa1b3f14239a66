/** The process replayIsolated forks: one replay of one policy, its result sent back over IPC. */
import { carbonSignal, environmentOf, loadClusterFile, nodesOf } from './cluster-file';
import { simulate } from './engine';
import type { ReplayMessage, ReplayRequest } from './isolated';
import { policiesNamed, processorLevel } from './policies';
import { loadTrace } from './sources';

function send(message: ReplayMessage, then: () => void = () => {}): void {
  process.send!(message, then);
}

process.once('message', (request: ReplayRequest) => {
  const trace = loadTrace(request.trace, request.synthetic);
  const jobs = request.limit ? trace.jobs.slice(0, request.limit) : trace.jobs;
  const file = request.cluster ? loadClusterFile(request.cluster) : undefined;
  const nodes = file ? nodesOf(file) : trace.cluster;
  if (!nodes) throw new Error(`${request.trace} does not describe its cluster: pass a cluster file`);
  const env = environmentOf(file, request.carbon ? carbonSignal(request.carbon, request.carbonStart) : undefined);
  const [base] = policiesNamed(request.policy);
  const policy = trace.processorLevel ? processorLevel(base) : base;
  if (request.backfillDepth !== undefined) policy.backfillDepth = request.backfillDepth ?? undefined;
  const before = process.cpuUsage();
  const result = simulate(jobs, nodes, policy, env, { ...request.options, onProgress: (arrived, total) => send({ kind: 'progress', arrived, total }) });
  const cpu = process.cpuUsage(before);
  send({ kind: 'done', result, cpuS: Math.round((cpu.user + cpu.system) / 1000) / 1000 }, () => process.disconnect());
});
