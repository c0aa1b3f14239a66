/**
 * End-to-end benchmark, the e2e scenario of the load engine (loadtests/e2e.ts): nats-server, the scheduler
 * and an agent of 1,000 virtual nodes, each a separate process on this machine; the load engine submits jobs
 * over HTTP at a fixed rate (open model: requests go out on schedule whether or not earlier ones have been
 * answered) and watches agents' status reports on NATS.
 *
 *   npm run bench:e2e                              # 1,000 jobs/s for 10 s, then the highest accepted rate
 *   npm run bench:e2e -- --rate 1500 --duration 20 --max-rate 0
 *
 * Prints submit-to-ack and submit-to-running latency (hdr-histogram-js), accepted jobs per second, and
 * whether any acknowledged job was lost (did not end within the drain time). The final line is JSON:
 * {"rate":...,"acceptedPerSec":...,"ackP99Ms":...,"runningP99Ms":...,"lost":0,...}. `rate`, `ackP99Ms`
 * and `runningP99Ms` are from the fixed-rate phase; `acceptedPerSec` is the highest throughput measured
 * (the saturation phase when it runs, else the fixed-rate phase). `cpuPer1000Jobs` ({"scheduler","agents",
 * "nats"}, CPU seconds from /proc per 1,000 jobs accepted in the fixed-rate phase) compares with bench:real's.
 * A warm-up (2 s at 200/s, 3 s at the rate) comes first and is not counted.
 */
import { Command } from 'commander';
import { describePhase, e2eSummary, runE2eScenario } from '../loadtests/e2e';

const program = new Command()
  .name('bench:e2e')
  .option('--rate <n>', 'fixed submission rate, jobs per second', '1000')
  .option('--duration <s>', 'seconds of fixed-rate load', '10')
  .option('--max-rate <n>', 'offered rate of the saturation phase (0 skips it)', '5000')
  .option('--max-duration <s>', 'seconds of the saturation phase', '5')
  .option('--nodes <n>', 'virtual nodes', '1000')
  .option('--connections <n>', 'HTTP connections of the load generator', '64')
  .parse();
const opts = program.opts();
const rate = Number(opts.rate);

const r = await runE2eScenario({
  rate,
  durationS: Number(opts.duration),
  maxRate: Number(opts.maxRate),
  maxDurationS: Number(opts.maxDuration),
  nodes: Number(opts.nodes),
  connections: Number(opts.connections),
  progress: (line) => process.stderr.write(`${line}\n`),
});
console.log(describePhase(r.fixed, 'fixed rate'));
console.log(`  CPU per 1,000 jobs: ${Object.entries(r.cpuPerThousandJobs).map(([name, s]) => `${name} ${s.toFixed(2)} s`).join(', ')}`);
if (r.saturation) console.log(describePhase(r.saturation, 'saturation'));
console.log(`lost (acknowledged, not finished 60 s after the load): ${r.lost} of ${r.acked}`);
console.log(JSON.stringify(e2eSummary(r, rate)));
