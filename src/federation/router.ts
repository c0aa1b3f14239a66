import { DATA_CLASSES, dataClassRank, type DataClass, type FederationFile, type FederationSite, type Pool, type PoolSummary, type SiteSummary } from '../protocol';

/**
 * The federation's router: which site runs a job. Pure (no clock, no I/O): the caller passes the sites'
 * latest summaries and the time. Feasibility first (data class, certification, pool, resources, a live
 * summary), then a score in seconds over the feasible sites: expected wait + moving the inputs + carbon and
 * price turned into seconds by the federation file's weights. The home site keeps the job unless another is
 * better by more than `preferHomeWithinS`.
 */

/** Power drawn per CPU core and per GPU, for the energy (carbon) estimate of a job that has not run yet. */
export const WATTS_PER_CORE = 10;
export const WATTS_PER_GPU = 400;
/** Run time assumed for a job that declares neither duration nor walltime, seconds. */
export const DEFAULT_RUN_SECONDS = 3600;

/** What the router needs of a job. */
export interface RoutedJob {
  pool: Pool;
  tasks: number;
  resources: { cpuMillis: number; memBytes: number; gpus: number; gpuMilli: number };
  dataClass: DataClass;
  durationSeconds?: number;
  walltimeSeconds?: number;
  /** The sites the job may run at (any when absent). */
  sites?: string[];
}

/** What the router needs of an input dataset. */
export interface RoutedDataset {
  id: string;
  site: string;
  sizeBytes: number;
  classification: DataClass;
}

export interface RouteInput {
  job: RoutedJob;
  inputs: RoutedDataset[];
  /** The site the job was submitted at. */
  home: string;
  federation: FederationFile;
  /** Latest summary of each site (the home's own is computed from its live state). */
  summaries: ReadonlyMap<string, SiteSummary>;
  nowMs: number;
  /** A summary older than this means the site is gone. */
  staleAfterMs: number;
  /** Sites that gave the job back: not chosen again. */
  exclude?: readonly string[];
}

/** One site's estimate for a job, in seconds and in the units they came from. */
export interface SiteScore {
  site: string;
  waitS: number;
  transferS: number;
  transferBytes: number;
  greenShare: number;
  carbonKg: number;
  priceYuan: number;
  /** waitS + transferS + weighted carbon and price: lower is better. */
  score: number;
}

export type RouteDecision =
  | { kind: 'routed'; site: string; reason: string; scores: SiteScore[]; refusals: SiteRefusal[] }
  | { kind: 'infeasible'; reason: string; refusals: SiteRefusal[] };

export interface SiteRefusal {
  site: string;
  reason: string;
}

/** The effective data class of a job: the highest of its own and its inputs'. */
export function effectiveDataClass(job: RoutedJob, inputs: readonly RoutedDataset[]): DataClass {
  let rank = dataClassRank(job.dataClass);
  for (const d of inputs) rank = Math.max(rank, dataClassRank(d.classification));
  return DATA_CLASSES[rank];
}

/** Chooses the site for a job, or says why none may take it. */
export function routeJob(input: RouteInput): RouteDecision {
  const refusals: SiteRefusal[] = [];
  const scores: SiteScore[] = [];
  for (const site of input.federation.sites) {
    const refusal = refuse(site, input);
    if (refusal) refusals.push({ site: site.name, reason: refusal });
    else scores.push(scoreSite(site, input));
  }
  if (scores.length === 0) return { kind: 'infeasible', reason: refusals.map((r) => `${r.site}: ${r.reason}`).join('; '), refusals };
  const best = scores.reduce((a, b) => (b.score < a.score || (b.score === a.score && b.site < a.site) ? b : a));
  const home = scores.find((s) => s.site === input.home);
  const chosen = home && home.score <= best.score + input.federation.weights.preferHomeWithinS ? home : best;
  return { kind: 'routed', site: chosen.site, reason: explain(chosen, scores, refusals, input.home), scores, refusals };
}

/** Why a site may not run the job, or undefined when it may. */
function refuse(site: FederationSite, input: RouteInput): string | undefined {
  const { job, inputs, home } = input;
  if (job.sites && !job.sites.includes(site.name)) return 'not among the sites the job names';
  if (input.exclude?.includes(site.name)) return 'gave the job back';
  // Restricted data never leaves home: the job's own (home = where it was submitted) and each restricted input's.
  const restrictedHomes = new Set(inputs.filter((d) => d.classification === 'restricted').map((d) => d.site));
  if (job.dataClass === 'restricted') restrictedHomes.add(home);
  if (restrictedHomes.size > 1) return `restricted data at ${[...restrictedHomes].sort().join(' and ')} cannot meet at one site`;
  const [restrictedHome] = [...restrictedHomes];
  if (restrictedHome !== undefined && restrictedHome !== site.name) return `restricted data never leaves ${restrictedHome}`;
  const dataClass = effectiveDataClass(job, inputs);
  if (!site.certified.includes(dataClass)) return `not certified for ${dataClass} data`;
  if (!site.pools.includes(job.pool)) return `has no ${job.pool} pool`;
  const summary = input.summaries.get(site.name);
  if (!summary) return 'no capacity summary heard';
  const ageMs = input.nowMs - summary.atMs;
  if (site.name !== home && ageMs > input.staleAfterMs) return `silent for ${(ageMs / 1000).toFixed(1)}s`;
  const pool = summary.pools[job.pool];
  if (!pool || pool.nodes === 0) return `no ${job.pool} nodes`;
  const r = job.resources;
  const gpusEach = r.gpus + (r.gpuMilli > 0 ? 1 : 0);
  if (r.cpuMillis > pool.largestNode.cpuMillis || r.memBytes > pool.largestNode.memBytes || gpusEach > pool.largestNode.gpus) return `no ${job.pool} node is large enough for one task`;
  for (const d of inputs) if (d.site !== site.name && !linkOf(input.federation, d.site, site.name)) return `no link from ${d.site}, where ${d.id} is`;
  return undefined;
}

/** The link between two sites, if the federation file lists one. */
export function linkOf(federation: FederationFile, a: string, b: string): FederationFile['links'][number] | undefined {
  return federation.links.find((l) => (l.between[0] === a && l.between[1] === b) || (l.between[0] === b && l.between[1] === a));
}

/** The run time the estimates use, seconds. */
export function runSecondsOf(job: RoutedJob): number {
  return job.durationSeconds ?? job.walltimeSeconds ?? DEFAULT_RUN_SECONDS;
}

/**
 * Expected wait at a pool, seconds: a fluid estimate over the job's dominant resource (GPUs when it asks for
 * any, else CPU). The backlog is what waits plus what the job needs beyond what is free; it drains at the
 * pool's capacity over the mean run time. No backlog, no wait.
 */
export function expectedWaitS(job: RoutedJob, pool: PoolSummary): number {
  const r = job.resources;
  const usesGpu = r.gpus > 0 || r.gpuMilli > 0;
  const capacity = usesGpu ? pool.capacity.gpus * 1000 : pool.capacity.cpuMillis;
  const allocated = usesGpu ? pool.allocated.gpuMilli : pool.allocated.cpuMillis;
  const pending = usesGpu ? pool.pendingGpuMilli : pool.pendingCpuMillis;
  const need = job.tasks * (usesGpu ? r.gpus * 1000 + r.gpuMilli : r.cpuMillis);
  if (capacity <= 0) return Number.POSITIVE_INFINITY;
  const backlog = pending + need - (capacity - allocated);
  if (backlog <= 0) return 0;
  const runS = pool.meanRunSeconds > 0 ? pool.meanRunSeconds : runSecondsOf(job);
  return (backlog / capacity) * runS;
}

function scoreSite(site: FederationSite, input: RouteInput): SiteScore {
  const { job } = input;
  const pool = input.summaries.get(site.name)!.pools[job.pool]!;
  const waitS = expectedWaitS(job, pool);
  let transferS = 0;
  let transferBytes = 0;
  for (const d of input.inputs) {
    if (d.site === site.name) continue;
    const link = linkOf(input.federation, d.site, site.name)!;
    transferS += (d.sizeBytes * 8) / (link.bandwidthGbps * 1e9) + link.latencyMs / 1000;
    transferBytes += d.sizeBytes;
  }
  const r = job.resources;
  const runS = runSecondsOf(job);
  const gpuEach = r.gpus + r.gpuMilli / 1000;
  const energyKwh = (job.tasks * ((r.cpuMillis / 1000) * WATTS_PER_CORE + gpuEach * WATTS_PER_GPU) * runS) / 3.6e6;
  const greenShare = input.summaries.get(site.name)?.greenShare ?? site.green.share;
  const carbonKg = (energyKwh * site.green.carbonGPerKwh * (1 - greenShare)) / 1000;
  const priceYuan = job.tasks * ((r.cpuMillis / 1000) * site.prices.cpuCoreHour + gpuEach * site.prices.gpuHour) * (runS / 3600);
  const w = input.federation.weights;
  const score = waitS + transferS + carbonKg * w.secondsPerKgCo2 + priceYuan * w.secondsPerYuan;
  return { site: site.name, waitS, transferS, transferBytes, greenShare, carbonKg, priceYuan, score };
}

const s1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '∞');

/** The pending reason: the chosen site, its figures, the others' scores and why the rest were refused. */
function explain(chosen: SiteScore, scores: SiteScore[], refusals: SiteRefusal[], home: string): string {
  const figures = (s: SiteScore) => `score ${s1(s.score)}s: wait ~${s1(s.waitS)}s, inputs move in ${s1(s.transferS)}s, green ${Math.round(s.greenShare * 100)}%, ${s.carbonKg.toFixed(2)} kg CO2, ¥${s.priceYuan.toFixed(2)}`;
  const head = chosen.site === home ? `stays at ${home} (${figures(chosen)})` : `routed from ${home} to ${chosen.site} (${figures(chosen)})`;
  const others = scores.filter((s) => s !== chosen).map((s) => `${s.site} score ${s1(s.score)}s (wait ~${s1(s.waitS)}s)`);
  const refused = refusals.map((r) => `${r.site}: ${r.reason}`);
  return [head, ...others, ...refused].join('; ');
}

/** A job offered to a site after its last summary: demand the summary does not show yet. */
export interface RecentOffer {
  site: string;
  pool: Pool;
  atMs: number;
  cpuMillis: number;
  gpuMilli: number;
}

/**
 * Summaries with the offers each site has not reported yet added to its waiting demand: a burst routed in the
 * second between two summaries would otherwise all go to the site that looked idle at its last one.
 */
export function withRecentOffers(summaries: ReadonlyMap<string, SiteSummary>, offers: readonly RecentOffer[]): Map<string, SiteSummary> {
  const out = new Map(summaries);
  for (const o of offers) {
    const s = out.get(o.site);
    const pool = s?.pools[o.pool];
    if (!s || !pool || o.atMs < s.atMs) continue;
    out.set(o.site, { ...s, pools: { ...s.pools, [o.pool]: { ...pool, pendingJobs: pool.pendingJobs + 1, pendingCpuMillis: pool.pendingCpuMillis + o.cpuMillis, pendingGpuMilli: pool.pendingGpuMilli + o.gpuMilli } } });
  }
  return out;
}
