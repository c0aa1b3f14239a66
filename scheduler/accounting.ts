import { billFor, disclosureReport, periodRange, selectSegments, summarize, type Bill, type DisclosureReport, type PoolCapacity, type PriceTable, type UsageSummary } from '../src/billing';
import { QY_ERR_TENANT_NOT_FOUND } from '../src/errors';
import { POOLS, taskKey, type Pool, type TaskUsage } from '../src/protocol';
import type { HistoryReads } from './history-reads';
import type { JobStateView } from './job-store';
import type { Principal, TenantDirectory } from './tenants';

/** What `GET /v1/usage` asks for. */
export interface UsageQuery {
  period: string;
  tenant?: string;
  pool?: Pool;
  jobId?: string;
}

/** What accounting reads besides the history: tenants, prices, and the pools' capacity for the disclosure. */
export interface AccountingDeps {
  readonly tenants: Pick<TenantDirectory, 'tenant'>;
  readonly prices: PriceTable;
  readonly store: Pick<JobStateView, 'cluster'>;
}

/**
 * Usage, bills and the disclosure report of any period, computed by src/billing from the task usages and
 * jobs served that the history reads give: memory and the accounting archive, each task and job once. With
 * the same data these are the same exact integers whichever place holds what.
 */
export class Accounting {
  constructor(
    private readonly s: AccountingDeps,
    private readonly history: HistoryReads,
  ) {}

  /** Metered use in a period (`YYYY-MM` or `YYYY-MM-DD`, local time): a tenant sees only its own. */
  async usage(filter: UsageQuery, principal: Principal): Promise<UsageSummary & { period: string; interval: string }> {
    const tenant = principal.kind === 'tenant' ? principal.name : filter.tenant;
    if (principal.kind === 'tenant' && filter.tenant && filter.tenant !== principal.name) throw new QY_ERR_TENANT_NOT_FOUND(filter.tenant);
    const range = periodRange(filter.period, this.s.prices.timeZoneOffsetMinutes);
    const selected = { tenant, pool: filter.pool, jobId: filter.jobId, fromMs: range.fromMs, toMs: range.toMs };
    const summary = summarize(await this.history.usages(selected), selected);
    return { period: range.period, interval: range.interval, ...summary };
  }

  /**
   * The metered usage of each task in a period, with the segments the filter selects: the records `usage`
   * sums, one per task of an attempt (what the chaos campaign's checker counts metering by).
   */
  async usageTasks(filter: UsageQuery, principal: Principal): Promise<{ period: string; interval: string; items: TaskUsage[] }> {
    const tenant = principal.kind === 'tenant' ? principal.name : filter.tenant;
    if (principal.kind === 'tenant' && filter.tenant && filter.tenant !== principal.name) throw new QY_ERR_TENANT_NOT_FOUND(filter.tenant);
    const range = periodRange(filter.period, this.s.prices.timeZoneOffsetMinutes);
    const selected = { tenant, pool: filter.pool, jobId: filter.jobId, fromMs: range.fromMs, toMs: range.toMs };
    // Records in the order the history gave them; a task listed twice by it stays twice (that is what the checker looks for).
    const items: TaskUsage[] = [];
    let last: { source: TaskUsage; out: TaskUsage } | undefined;
    for (const [usage, segment] of selectSegments(await this.history.usages(selected), selected)) {
      if (last?.source !== usage) {
        last = { source: usage, out: { ...usage, segments: [] } };
        items.push(last.out);
      }
      last.out.segments.push(segment);
    }
    items.sort((a, b) => (taskKey(a) < taskKey(b) ? -1 : taskKey(a) > taskKey(b) ? 1 : 0));
    return { period: range.period, interval: range.interval, items };
  }

  /** A tenant's bill for a period, from the price table; a tenant may fetch only its own. */
  async bill(tenant: string, period: string, principal: Principal): Promise<Bill> {
    if (!this.s.tenants.tenant(tenant) || (principal.kind === 'tenant' && principal.name !== tenant)) throw new QY_ERR_TENANT_NOT_FOUND(tenant);
    const range = periodRange(period, this.s.prices.timeZoneOffsetMinutes);
    return billFor(tenant, period, await this.history.usages({ tenant, fromMs: range.fromMs, toMs: range.toMs }), this.s.prices);
  }

  /** The public disclosure report of a period: capacity (now), use per tenant and pool, energy and carbon, jobs served. */
  async disclosure(period: string): Promise<DisclosureReport> {
    const range = periodRange(period, this.s.prices.timeZoneOffsetMinutes);
    const capacity: Partial<Record<Pool, PoolCapacity>> = {};
    for (const pool of POOLS) {
      const nodes = this.s.store.cluster.nodesOf(pool);
      if (nodes.length === 0) continue;
      capacity[pool] = {
        nodes: nodes.length,
        cores: Math.round(nodes.reduce((n, x) => n + x.allocatable.cpuMillis, 0) / 1000),
        gpus: nodes.reduce((n, x) => n + x.allocatable.gpus, 0),
        gpuModels: [...new Set(nodes.flatMap((x) => (x.spec.gpuModel ? [x.spec.gpuModel] : [])))].sort(),
      };
    }
    const [usages, jobsServed] = await Promise.all([this.history.usages({ fromMs: range.fromMs, toMs: range.toMs }), this.history.jobsServed(range.fromMs, range.toMs)]);
    return disclosureReport({ period, usages, capacity, jobsServed, timeZoneOffsetMinutes: this.s.prices.timeZoneOffsetMinutes });
  }
}
