/**
 * Real agents benchmark (issue 14): nats-server, the scheduler and one agent process per node (agents/main.ts
 * with a node file, running real processes), all on this machine; C closed-loop clients submit M jobs of
 * `true`, each client waiting for its 202 before the next submission (like sbatch).
 *
 *   npm run bench:real                                   # 100 nodes of 8 cores, 5,000 jobs, 8 clients
 *   npm run bench:real -- --nodes 20 --jobs 1000 --clients 8
 *
 * The final line is JSON: {"nodes","jobs","clients","submitPerSec","finishedPerSec","makespanS","startP50Ms",
 * "startP99Ms","cpuPer1000Jobs":{"scheduler","agents","nats"},"idleAgentCpuPct"}; CPU seconds from /proc/<pid>/stat during the
 * submissions and until the last job finished (agents include their tasks); the idle agents' share of a core
 * from their threads' run time (/proc/<pid>/task/<tid>/schedstat), before the submissions.
 */
import { Command } from 'commander';
import { runRealScenario } from '../loadtests/real';
import { closedLoopScenario, withClosedLoopOptions } from './closed-loop-options';

const program = withClosedLoopOptions(new Command().name('bench:real'), 'agent processes')
  .option('--idle-seconds <s>', 'measure idle agents this long before submitting (0: not at all)', '10')
  .parse();
const opts = program.opts();

const { summary: r, agentsOwnPer1000Jobs, tasksPer1000Jobs } = await runRealScenario({
  ...closedLoopScenario(opts),
  idleSeconds: Number(opts.idleSeconds),
  progress: (line) => process.stderr.write(`${line}\n`),
});
console.log(`${r.jobs} jobs on ${r.nodes} real nodes from ${r.clients} clients: ${r.submitPerSec} accepted/s, ${r.finishedPerSec} finished/s, makespan ${r.makespanS} s`);
console.log(`  submit→running p50 ${r.startP50Ms} ms  p99 ${r.startP99Ms} ms`);
console.log(`  CPU per 1,000 jobs: scheduler ${r.cpuPer1000Jobs.scheduler} s, agents ${r.cpuPer1000Jobs.agents} s, nats-server ${r.cpuPer1000Jobs.nats} s`);
if (r.idleAgentCpuPct !== undefined) console.log(`  idle agent: ${r.idleAgentCpuPct}% of a core (before the submissions)`);
console.log(`  agents: ${agentsOwnPer1000Jobs} s in the agent processes, ${tasksPer1000Jobs} s in their tasks (forked, exec'd \`true\`)`);
console.log(JSON.stringify(r));
