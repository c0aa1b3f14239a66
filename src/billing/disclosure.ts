import { POOLS, type DisclosureReport, type JobsServed, type Pool, type PoolCapacity, type PoolDisclosure, type TaskUsage, type TenantPoolUsage } from '../protocol';
import { DEFAULT_TIME_ZONE_OFFSET_MINUTES, ITEM_UNITS, decimal, periodRange, summarize, type UsageFigures } from './usage';

/**
 * The public disclosure of how the cluster's public compute resources were used in a period: capacity and
 * services per pool, use per tenant and pool, energy, green energy and carbon, and jobs served. Tenant names
 * appear as given: the operator decides what to publish.
 */

const MS_PER_HOUR = 3_600_000;

export { jobsServedSchema, poolCapacitySchema, type DisclosureReport, type JobsServed, type PoolCapacity, type PoolDisclosure, type TenantPoolUsage } from '../protocol';

export interface DisclosureInput {
  period: string;
  usages: readonly TaskUsage[];
  capacity: Partial<Record<Pool, PoolCapacity>>;
  jobsServed?: Partial<Record<Pool, JobsServed>>;
  timeZoneOffsetMinutes?: number;
}

/** The services each pool offers, in words for the public. */
export const POOL_SERVICES: Record<Pool, string> = {
  general: 'General-purpose CPU computing',
  intelligent: 'AI training and inference on GPUs and NPUs',
  super: 'High-performance computing on whole nodes',
};


/** Sum of the GPU milli-seconds over models. */
function gpuMilliSeconds(usage: UsageFigures): number {
  return Object.values(usage.gpuMilliSeconds).reduce((a, b) => a + b, 0);
}

/** The outcome counts of several pools added up, outcomes in first-seen order. */
function sumJobsServed(served: readonly JobsServed[]): JobsServed {
  const total = new Map<string, number>();
  for (const s of served) for (const [outcome, n] of Object.entries(s)) total.set(outcome, (total.get(outcome) ?? 0) + n);
  return Object.fromEntries(total);
}

/** The disclosure of a period: pools with capacity or use, in pool order; tenants by pool, then name. */
export function disclosureReport(input: DisclosureInput): DisclosureReport {
  const range = periodRange(input.period, input.timeZoneOffsetMinutes ?? DEFAULT_TIME_ZONE_OFFSET_MINUTES);
  const window = { fromMs: range.fromMs, toMs: range.toMs };
  const periodMs = range.toMs - range.fromMs;
  const pools: PoolDisclosure[] = [];
  const tenants: TenantPoolUsage[] = [];
  for (const pool of POOLS) {
    const summary = summarize(input.usages, { ...window, pool });
    const capacity = input.capacity[pool] ?? null;
    if (capacity === null && summary.total.jobs === 0) continue;
    const cores = capacity?.cores ?? 0;
    const gpus = capacity?.gpus ?? 0;
    pools.push({
      pool,
      services: POOL_SERVICES[pool],
      capacity,
      offered: { coreHours: (cores * periodMs) / MS_PER_HOUR, gpuHours: (gpus * periodMs) / MS_PER_HOUR },
      usage: summary.total,
      utilisation: {
        cpu: cores === 0 ? null : summary.total.cpuMilliSeconds / (cores * periodMs),
        gpu: gpus === 0 ? null : gpuMilliSeconds(summary.total) / (gpus * periodMs),
      },
      jobsServed: input.jobsServed?.[pool] ?? null,
    });
    for (const [tenant, usage] of Object.entries(summary.byTenant)) tenants.push({ tenant, pool, usage });
  }
  const served = pools.flatMap((p) => (p.jobsServed ? [p.jobsServed] : []));
  return {
    period: range.period,
    fromMs: range.fromMs,
    toMs: range.toMs,
    timeZoneOffsetMinutes: range.timeZoneOffsetMinutes,
    interval: range.interval,
    pools,
    tenants,
    total: summarize(input.usages, window).total,
    jobsServed: served.length > 0 ? sumJobsServed(served) : null,
  };
}

/** Text for a Markdown table cell: pipes, backslashes and inline markup escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replace(/[\\|*_`[\]<>]/g, '\\$&').replace(/\s*[\r\n]+\s*/g, ' ');
}

/** A Markdown table; the first `leftColumns` columns are text (left-aligned), the rest figures (right-aligned). */
function table(header: readonly string[], rows: readonly string[][], leftColumns = 1): string {
  const align = header.map((_, i) => (i < leftColumns ? ':---' : '---:'));
  return [header, align, ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

const DASH = '—';

/** Figures for people: integers to a fixed number of decimals (half-up), shares as percentages. */
const hours = (milliSeconds: number, perUnit: number) => decimal(milliSeconds, perUnit, 1);
const percent = (part: number, whole: number | bigint) => (BigInt(whole) === 0n ? DASH : `${decimal(BigInt(part) * 100n, whole, 1)}%`);
const kWh = (milliWh: number) => decimal(milliWh, ITEM_UNITS.energy.basePerUnit, 1);
const kg = (mg: number) => decimal(mg, 1_000_000, 1);

function capacityRow(p: PoolDisclosure, periodMs: number): string[] {
  const coreMs = BigInt(p.capacity?.cores ?? 0) * BigInt(periodMs);
  const gpuMs = BigInt(p.capacity?.gpus ?? 0) * BigInt(periodMs);
  const usedGpu = gpuMilliSeconds(p.usage);
  return [
    p.pool,
    cell(p.services),
    p.capacity && p.capacity.gpuModels.length > 0 ? cell(p.capacity.gpuModels.join(', ')) : DASH,
    String(p.capacity?.nodes ?? 0),
    String(p.capacity?.cores ?? 0),
    String(p.capacity?.gpus ?? 0),
    decimal(coreMs, MS_PER_HOUR, 0),
    hours(p.usage.cpuMilliSeconds, ITEM_UNITS.cpu.basePerUnit),
    percent(p.usage.cpuMilliSeconds, coreMs),
    decimal(gpuMs, MS_PER_HOUR, 0),
    hours(usedGpu, ITEM_UNITS.gpu.basePerUnit),
    percent(usedGpu, gpuMs),
  ];
}

function tenantRow(t: TenantPoolUsage): string[] {
  const u = t.usage;
  return [
    cell(t.tenant),
    t.pool,
    String(u.jobs),
    hours(u.cpuMilliSeconds, ITEM_UNITS.cpu.basePerUnit),
    hours(gpuMilliSeconds(u), ITEM_UNITS.gpu.basePerUnit),
    hours(u.memMiBSeconds, ITEM_UNITS.memory.basePerUnit),
    kWh(u.energyMilliWh),
    percent(u.greenMilliWh, u.energyMilliWh),
    kg(u.carbonMg),
  ];
}

function energyRow(name: string, u: UsageFigures): string[] {
  return [name, kWh(u.energyMilliWh), kWh(u.greenMilliWh), percent(u.greenMilliWh, u.energyMilliWh), kg(u.carbonMg)];
}

function jobsServedSection(report: DisclosureReport): string {
  if (report.jobsServed === null) return 'Not reported for this period.';
  const outcomes = Object.keys(report.jobsServed);
  // A pool that reported nothing shows dashes, not zeros: not reported is not none.
  const row = (name: string, served: JobsServed | null) => [name, ...outcomes.map((o) => (served ? String(served[o] ?? 0) : DASH))];
  return table(['Pool', ...outcomes.map(cell)], [...report.pools.map((p) => row(p.pool, p.jobsServed)), row('**Total**', report.jobsServed)]);
}

/** The report as a Markdown document for publication: title, period, and one table per section. */
export function disclosureMarkdown(report: DisclosureReport): string {
  const periodMs = report.toMs - report.fromMs;
  const [from, to] = report.interval.split('/');
  const sections = [
    `# Public compute disclosure: ${report.period}`,
    `Period: ${from} to ${to} (local time, end excluded). How the public compute resources of the cluster were used: what each pool offered, who used it, the energy it took and how green that energy was, and the jobs served. Use is metered per task and clock hour; energy includes the data centre's overhead (PUE).`,
    '## Capacity and services',
    table(['Pool', 'Services', 'GPU models', 'Nodes', 'Cores', 'GPUs', 'Core-hours offered', 'Core-hours used', 'CPU utilisation', 'GPU-hours offered', 'GPU-hours used', 'GPU utilisation'], report.pools.map((p) => capacityRow(p, periodMs)), 3),
    '## Use by tenant and pool',
    report.tenants.length === 0
      ? 'No metered use in this period.'
      : table(['Tenant', 'Pool', 'Jobs', 'Core-hours', 'GPU-hours', 'Memory GiB-hours', 'Energy kWh', 'Green share', 'Carbon kg'], report.tenants.map(tenantRow), 2),
    '## Energy and carbon',
    table(['Pool', 'Energy kWh', 'Green energy kWh', 'Green share', 'Carbon kg'], [...report.pools.map((p) => energyRow(p.pool, p.usage)), energyRow('**Total**', report.total)]),
    '## Jobs served',
    jobsServedSection(report),
  ];
  return `${sections.join('\n\n')}\n`;
}
