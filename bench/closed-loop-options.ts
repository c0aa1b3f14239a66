import type { Command } from 'commander';

/** The closed-loop scenario of issue 14, which bench:real and bench:slurm both run. */
export interface ClosedLoopScenario {
  nodes: number;
  cores: number;
  jobs: number;
  clients: number;
}

/** Adds the scenario's options with issue 14's defaults: 100 nodes of 8 cores, 5,000 jobs of `true`, 8 clients. */
export function withClosedLoopOptions(command: Command, nodesAre: string): Command {
  return command
    .option('--nodes <n>', `${nodesAre}, one node each`, '100')
    .option('--cores <n>', 'cores of each node', '8')
    .option('--jobs <n>', 'jobs of `true` to submit', '5000')
    .option('--clients <n>', 'closed-loop clients, each waiting for its submission to be accepted before the next', '8');
}

/** The scenario from the parsed options. */
export function closedLoopScenario(opts: Record<string, string>): ClosedLoopScenario {
  return { nodes: Number(opts.nodes), cores: Number(opts.cores), jobs: Number(opts.jobs), clients: Number(opts.clients) };
}
