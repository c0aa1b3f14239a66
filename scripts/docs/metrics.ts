import type { Registry } from 'prom-client';
import { StateMetrics } from '../../scheduler/state-keeper';
import { GreenMetrics } from '../../scheduler/green';
import { systemClock } from '../../src/time';
import { ArchiveMetrics } from '../../src/archive/metrics';
import { SchedulerMetrics } from '../../src/telemetry/metrics';
import { cell, table } from './markdown';

/**
 * The scheduler's own metrics (`qy_*`) as its /metrics serves them, from the prom-client registries where
 * they are defined: the service's, the state keeper's, the green signal's and the archive's (the latter only with
 * QY_DATABASE_URL). Nothing is scraped: gauges compute at scrape time, so sources are never called here.
 */
export function metricsTable(): string {
  const never = (): never => {
    throw new Error('not scraped when generating docs');
  };
  const metrics = new SchedulerMetrics({ ready: never, leadership: never, pools: never, pending: never, nodes: never, tenants: never, carbonIntensity: never });
  const registry: Registry = metrics.registry;
  new StateMetrics(registry, never);
  new ArchiveMetrics(registry, never);
  new GreenMetrics(registry, never, systemClock);
  const rows = registry
    .getMetricsAsArray()
    .map((m) => m as unknown as { name: string; help: string; labelNames: string[]; constructor: { name: string } })
    .filter((m) => m.name.startsWith('qy_'))
    .map((m) => {
      const { name, help, labelNames } = m;
      return [`\`${name}\``, m.constructor.name.toLowerCase(), labelNames.map((l) => `\`${l}\``).join(', ') || '—', cell(help)];
    });
  return table(['metric', 'type', 'labels', 'what'], rows);
}
