import { Command, InvalidArgumentError } from 'commander';
import { runCampaign } from './campaign';
import { FAULT_KINDS, type FaultKind } from './faults';

const int = (name: string, min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};

const program = new Command()
  .name('chaos')
  .description(
    'Fault-injection campaign on a real local stack (3 NATS servers, 2 scheduler replicas, agents of real processes, PostgreSQL): ' +
      'seeded kills, pauses, partitions, a database outage and submit bursts, then a history check. Ends with one JSON line under --json.',
  )
  .option('--duration <s>', 'seconds of workload and faults', int('--duration', 10), 120)
  .option('--seed <n>', 'seed of the fault schedule and the workload', int('--seed', 0), 1)
  .option('--agents <n>', 'agent processes', int('--agents', 1), 3)
  .option('--nodes-per-agent <n>', 'nodes each agent serves', int('--nodes-per-agent', 1), 2)
  .option('--faults <kinds>', `fault kinds to draw from, comma-separated (${FAULT_KINDS.join(', ')})`)
  .option('--long-partitions', 'agent partitions outlast the down threshold (the node goes down, its work runs elsewhere)')
  .option('--db-outage-s <n>', 'database outages last this many seconds (default: 2-10 s drawn)', int('--db-outage-s', 1))
  .option('--max-faults <n>', 'run at most this many faults', int('--max-faults', 0))
  .option('--keep', 'keep the work folder (history file) and print its path')
  .option('--json', 'end with the summary as one JSON line')
  .parse();

const opts = program.opts<{ duration: number; seed: number; agents: number; nodesPerAgent: number; faults?: string; maxFaults?: number; dbOutageS?: number; longPartitions?: boolean; keep?: boolean; json?: boolean }>();
const kinds = opts.faults?.split(',').map((k) => k.trim()) as FaultKind[] | undefined;
const unknown = kinds?.filter((k) => !FAULT_KINDS.includes(k));
if (unknown && unknown.length > 0) program.error(`unknown fault kinds: ${unknown.join(', ')}`);

const report = await runCampaign({ seed: opts.seed, durationS: opts.duration, agents: opts.agents, nodesPerAgent: opts.nodesPerAgent, kinds, maxFaults: opts.maxFaults, longAgentPartitions: opts.longPartitions, dbOutageMs: opts.dbOutageS === undefined ? undefined : opts.dbOutageS * 1000, keep: opts.keep });
const s = report.summary;
if (opts.keep) process.stderr.write(`work folder: ${report.workDir}\n`);
if (!opts.json) {
  console.log(`seed ${s.seed}, ${s.durationS} s, ${s.faults} faults, ${s.acked} jobs acknowledged`);
  console.log(`lost ${s.lost}, duplicate starts ${s.duplicateStarts}, overlaps ${s.overlaps}, double-metered ${s.doubleMetered}, unmetered ${s.unmetered}, audit ${s.auditValid ? 'valid' : 'INVALID'}`);
}
console.log(JSON.stringify(s));
const clean = s.lost === 0 && s.duplicateStarts === 0 && s.overlaps === 0 && s.doubleMetered === 0 && s.unmetered === 0 && s.auditValid;
process.exit(clean ? 0 : 1);
