import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { nodeListBeside, parseGpuCsv, parseNodeList } from './gpu-csv';
import { seededRng } from './rng';
import { parseSwf } from './swf';
import { mixedCluster, mixedWorkload, type ArrivalProcess } from './synthetic';
import type { Trace } from './trace';

/** Options of a synthetic workload (`--trace synthetic:poisson`). */
export interface SyntheticOptions {
  jobs: number;
  /** Nodes of the built-in mixed cluster the load is sized for. */
  nodes: number;
  /** Offered load as a share of each pool's capacity. */
  load: number;
  seed: number;
}

/** How long general-pool jobs of a synthetic workload run on average (other pools are sized to the same load). */
const SYNTHETIC_GENERAL_MEAN_RUN_MS = 30 * 60_000;

/**
 * The trace named on the command line: an SWF file (`.swf`, `.swf.gz`), a GPU-cluster CSV (`.csv`), or
 * `synthetic:poisson` / `synthetic:bursty` / `synthetic:uniform` (a mixed workload on the built-in mixed
 * cluster of `nodes` nodes).
 */
export function loadTrace(source: string, synthetic: SyntheticOptions): Trace {
  if (source.startsWith('synthetic:')) {
    const arrivals = source.slice('synthetic:'.length) as ArrivalProcess;
    if (!['poisson', 'bursty', 'uniform'].includes(arrivals)) throw new Error(`unknown synthetic arrivals ${arrivals}; use synthetic:poisson, synthetic:bursty or synthetic:uniform`);
    const cluster = mixedCluster(synthetic.nodes);
    const next = mixedWorkload(seededRng(synthetic.seed), seededRng(synthetic.seed + 1), cluster, { load: synthetic.load, arrivals, generalMeanRunMs: SYNTHETIC_GENERAL_MEAN_RUN_MS });
    return { name: source, jobs: Array.from({ length: synthetic.jobs }, next), skipped: {}, cluster };
  }
  const name = basename(source);
  if (/\.swf(\.gz)?$/i.test(source)) {
    const raw = readFileSync(source);
    return parseSwf((source.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8'), name);
  }
  if (/\.csv$/i.test(source)) {
    // A pod list published with its node list beside it (openb) brings its cluster.
    const nodeList = nodeListBeside(source);
    return { ...parseGpuCsv(readFileSync(source, 'utf8'), source), name, cluster: nodeList ? parseNodeList(readFileSync(nodeList, 'utf8'), nodeList) : undefined };
  }
  throw new Error(`${source}: unknown trace format; expected .swf, .swf.gz, .csv or synthetic:poisson|bursty|uniform`);
}
