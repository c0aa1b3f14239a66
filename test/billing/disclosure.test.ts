import { describe, expect, test } from 'vitest';
import { disclosureMarkdown, disclosureReport, type DisclosureInput } from '../../src/billing';
import { HOUR, cst, usage } from './fixtures';

const DAY_HOURS = 24;
const input: DisclosureInput = {
  period: '2026-11-02',
  capacity: {
    general: { nodes: 2, cores: 10, gpus: 0, gpuModels: [] },
    intelligent: { nodes: 1, cores: 64, gpus: 8, gpuModels: ['A800'] },
  },
  jobsServed: { general: { completed: 3, failed: 1 }, intelligent: { completed: 2, cancelled: 1 } },
  usages: [
    usage('j1', { segments: [{ hourStartMs: cst('2026-11-02T09:00'), cpuMilliSeconds: 12 * HOUR, energyMilliWh: 4_000_000, greenMilliWh: 1_000_000, carbonMg: 1_800_000 }] }),
    usage('j2', { tenant: 'a|b', pool: 'intelligent', segments: [{ hourStartMs: cst('2026-11-02T10:00'), cpuMilliSeconds: HOUR, gpuMilliSeconds: { A800: 48 * HOUR }, energyMilliWh: 6_000_000, greenMilliWh: 6_000_000 }] }),
    usage('j3', { tenant: 'shanghai-meteo', pool: 'super', segments: [{ hourStartMs: cst('2026-11-02T10:00'), cpuMilliSeconds: HOUR }] }),
    usage('j4', { segments: [{ hourStartMs: cst('2026-11-03T00:00'), cpuMilliSeconds: HOUR }] }),
  ],
};
const report = disclosureReport(input);

describe('the disclosure report', () => {
  test('covers the period in local time', () => {
    expect(report).toMatchObject({ period: '2026-11-02', fromMs: cst('2026-11-02T00:00'), toMs: cst('2026-11-03T00:00'), timeZoneOffsetMinutes: 480, interval: '2026-11-02T00:00:00+08:00/2026-11-03T00:00:00+08:00' });
  });

  test('lists pools with capacity or use, what they offered and how much of it was used', () => {
    expect(report.pools.map((p) => [p.pool, p.offered, p.utilisation, p.usage.jobs])).toEqual([
      // 12 of 240 core-hours.
      ['general', { coreHours: 10 * DAY_HOURS, gpuHours: 0 }, { cpu: 0.05, gpu: null }, 1],
      // 48 of 192 GPU-hours.
      ['intelligent', { coreHours: 64 * DAY_HOURS, gpuHours: 8 * DAY_HOURS }, { cpu: 1 / (64 * DAY_HOURS), gpu: 0.25 }, 1],
      // Used but not in the capacity given: listed, with nothing offered.
      ['super', { coreHours: 0, gpuHours: 0 }, { cpu: null, gpu: null }, 1],
    ]);
    expect(report.pools[0]).toMatchObject({ services: 'General-purpose CPU computing', capacity: input.capacity.general, jobsServed: { completed: 3, failed: 1 } });
    expect(report.pools[2]).toMatchObject({ capacity: null, jobsServed: null });
  });

  test('gives use per tenant and pool, tenant names as given, and energy, green share and carbon in total', () => {
    expect(report.tenants.map((t) => [t.tenant, t.pool, t.usage.coreHours])).toEqual([
      ['beijing', 'general', 12],
      ['a|b', 'intelligent', 1],
      ['shanghai-meteo', 'super', 1],
    ]);
    expect(report.total).toMatchObject({ jobs: 3, kWh: 10, greenKWh: 7, greenShare: 0.7, carbonKg: 1.8 });
    expect(report.jobsServed).toEqual({ completed: 5, failed: 1, cancelled: 1 });
  });
});

describe('the disclosure in Markdown', () => {
  const markdown = disclosureMarkdown(report);
  /** The rows of the table under a heading, header first. */
  const tableUnder = (heading: string) =>
    markdown
      .split(`## ${heading}\n\n`)[1]
      .split('\n\n')[0]
      .split('\n')
      .filter((line) => line !== '' && !/^\| :?-/.test(line));

  test('has a title, the period and the four sections', () => {
    expect(markdown).toMatch(/^# Public compute disclosure: 2026-11-02\n\nPeriod: 2026-11-02T00:00:00\+08:00 to 2026-11-03T00:00:00\+08:00 /);
    expect(markdown.match(/^## .*$/gm)).toEqual(['## Capacity and services', '## Use by tenant and pool', '## Energy and carbon', '## Jobs served']);
  });

  test('tables every pool, tenant and outcome with the figures', () => {
    expect(tableUnder('Capacity and services')).toEqual([
      '| Pool | Services | GPU models | Nodes | Cores | GPUs | Core-hours offered | Core-hours used | CPU utilisation | GPU-hours offered | GPU-hours used | GPU utilisation |',
      '| general | General-purpose CPU computing | — | 2 | 10 | 0 | 240 | 12.0 | 5.0% | 0 | 0.0 | — |',
      '| intelligent | AI training and inference on GPUs and NPUs | A800 | 1 | 64 | 8 | 1536 | 1.0 | 0.1% | 192 | 48.0 | 25.0% |',
      '| super | High-performance computing on whole nodes | — | 0 | 0 | 0 | 0 | 1.0 | — | 0 | 0.0 | — |',
    ]);
    expect(tableUnder('Use by tenant and pool')).toEqual([
      '| Tenant | Pool | Jobs | Core-hours | GPU-hours | Memory GiB-hours | Energy kWh | Green share | Carbon kg |',
      '| beijing | general | 1 | 12.0 | 0.0 | 0.0 | 4.0 | 25.0% | 1.8 |',
      '| a\\|b | intelligent | 1 | 1.0 | 48.0 | 0.0 | 6.0 | 100.0% | 0.0 |',
      '| shanghai-meteo | super | 1 | 1.0 | 0.0 | 0.0 | 0.0 | — | 0.0 |',
    ]);
    expect(tableUnder('Energy and carbon').at(-1)).toBe('| **Total** | 10.0 | 7.0 | 70.0% | 1.8 |');
    expect(tableUnder('Jobs served')).toEqual(['| Pool | completed | failed | cancelled |', '| general | 3 | 1 | 0 |', '| intelligent | 2 | 0 | 1 |', '| super | — | — | — |', '| **Total** | 5 | 1 | 1 |']);
  });

  test('says so when there was no use and no jobs were reported', () => {
    const empty = disclosureMarkdown(disclosureReport({ period: '2026-12', usages: [], capacity: { general: { nodes: 1, cores: 4, gpus: 0, gpuModels: [] } } }));
    expect(empty).toContain('## Use by tenant and pool\n\nNo metered use in this period.');
    expect(empty).toContain('## Jobs served\n\nNot reported for this period.');
    expect(empty).toContain('| general | General-purpose CPU computing | — | 1 | 4 | 0 | 2976 | 0.0 | 0.0% | 0 | 0.0 | — |');
  });
});
