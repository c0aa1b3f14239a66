import { describe, expect, test } from 'vitest';
import { effectiveDataClass, expectedWaitS, routeJob, withRecentOffers, type RoutedDataset, type RoutedJob, type RouteInput } from '../../src/federation';
import { federationFileSchema, type PoolSummary, type SiteSummary } from '../../src/protocol';

const GiB = 1024 ** 3;
const NOW = 1_000_000;

/** A general pool of 16 cores on nodes of 8, with what is allocated and waiting. */
function pool(allocatedCpuMillis: number, pendingCpuMillis: number, meanRunSeconds = 600): PoolSummary {
  return {
    nodes: 2,
    capacity: { cpuMillis: 16_000, memBytes: 64 * GiB, gpus: 0 },
    largestNode: { cpuMillis: 8_000, memBytes: 32 * GiB, gpus: 0 },
    allocated: { cpuMillis: allocatedCpuMillis, memBytes: 0, gpuMilli: 0 },
    pendingJobs: pendingCpuMillis / 2000,
    pendingCpuMillis,
    pendingGpuMilli: 0,
    meanRunSeconds,
  };
}

const summary = (site: string, general: PoolSummary, atMs = NOW, greenShare?: number): SiteSummary => ({ type: 'summary', site, atMs, greenShare, pools: { general } });

const federation = (weights: Record<string, number> = { secondsPerKgCo2: 0, secondsPerYuan: 0 }) =>
  federationFileSchema.parse({
    sites: [
      { name: 'a', pools: ['general'], certified: ['public', 'internal', 'sensitive', 'restricted'], green: { share: 0, carbonGPerKwh: 500 } },
      { name: 'b', pools: ['general', 'intelligent'], certified: ['public', 'internal', 'sensitive'], green: { share: 0.5, carbonGPerKwh: 500 } },
      { name: 'c', pools: ['general'], certified: ['public', 'internal'], green: { share: 0, carbonGPerKwh: 500 } },
    ],
    links: [
      { between: ['a', 'b'], bandwidthGbps: 8, latencyMs: 10 },
      { between: ['a', 'c'], bandwidthGbps: 1, latencyMs: 50 },
    ],
    weights,
  });

const job = (extra: Partial<RoutedJob> = {}): RoutedJob => ({ pool: 'general', tasks: 1, resources: { cpuMillis: 2000, memBytes: GiB, gpus: 0, gpuMilli: 0 }, dataClass: 'public', durationSeconds: 600, ...extra });

const BUSY = pool(16_000, 30_000); // wait (30000 + 2000 - 0) / 16000 × 600 = 1200 s
const IDLE = pool(0, 0);

function input(over: Partial<RouteInput> = {}): RouteInput {
  return {
    job: job(),
    inputs: [],
    home: 'a',
    federation: federation(),
    summaries: new Map([
      ['a', summary('a', BUSY)],
      ['b', summary('b', IDLE)],
      ['c', summary('c', IDLE)],
    ]),
    nowMs: NOW,
    staleAfterMs: 5_000,
    ...over,
  };
}

describe('expected wait', () => {
  const cases = [
    { name: 'an idle pool: no wait', pool: IDLE, want: 0 },
    { name: 'a full pool with 30 cores waiting: (30 + 2) cores / 16 × 600 s', pool: BUSY, want: 1200 },
    { name: 'a full pool, nobody waiting: the job waits for its own 2 cores', pool: pool(16_000, 0, 24), want: 3 },
    { name: 'room for the job and nobody waiting', pool: pool(14_000, 0), want: 0 },
  ];
  for (const c of cases) test(c.name, () => expect(expectedWaitS(job(), c.pool)).toBeCloseTo(c.want, 6));
});

describe('routing', () => {
  test('a busy home sends the job to the idle site, and the reason says why', () => {
    const d = routeJob(input());
    expect(d.kind).toBe('routed');
    if (d.kind !== 'routed') return;
    // b and c are both idle with no inputs: equal scores, the tie goes to the first name.
    expect(d.site).toBe('b');
    expect(d.reason).toMatch(/^routed from a to b \(score 0\.0s: wait ~0\.0s/);
    expect(d.reason).toContain('a score 1200.0s (wait ~1200.0s)');
  });

  test('home keeps the job when another site is better by no more than preferHomeWithinS', () => {
    const d = routeJob(input({ summaries: new Map([['a', summary('a', pool(16_000, 0, 24))], ['b', summary('b', IDLE)], ['c', summary('c', IDLE)]]) }));
    expect(d.kind === 'routed' && d.site).toBe('a'); // 3 s at home vs 0 s: within 5 s
  });

  test('restricted data never leaves home, however long the wait', () => {
    const d = routeJob(input({ job: job({ dataClass: 'restricted' }) }));
    expect(d.kind === 'routed' && d.site).toBe('a');
    expect(d.refusals).toEqual([
      { site: 'b', reason: 'restricted data never leaves a' },
      { site: 'c', reason: 'restricted data never leaves a' },
    ]);
  });

  test('a restricted input pins the job to the input\'s site even when submitted elsewhere', () => {
    const restricted: RoutedDataset = { id: 'ds-b-00000001', site: 'b', sizeBytes: 1, classification: 'restricted' };
    const d = routeJob(input({ inputs: [restricted] }));
    // b is not certified for restricted data: nobody may run it.
    expect(d.kind).toBe('infeasible');
    expect(d.reason).toBe('a: restricted data never leaves b; b: not certified for restricted data; c: restricted data never leaves b');
  });

  test('sensitive data goes only to certified sites', () => {
    const d = routeJob(input({ job: job({ dataClass: 'sensitive' }) }));
    expect(d.kind === 'routed' && d.site).toBe('b');
    expect(d.refusals).toEqual([{ site: 'c', reason: 'not certified for sensitive data' }]);
  });

  test('a sensitive input makes the job sensitive', () => {
    expect(effectiveDataClass(job(), [{ id: 'x', site: 'a', sizeBytes: 0, classification: 'sensitive' }])).toBe('sensitive');
  });

  test('moving the inputs costs size / bandwidth + latency', () => {
    const data: RoutedDataset = { id: 'ds-a-00000001', site: 'a', sizeBytes: 10e9, classification: 'public' };
    const d = routeJob(input({ inputs: [data] }));
    if (d.kind !== 'routed') throw new Error(d.reason);
    const by = Object.fromEntries(d.scores.map((s) => [s.site, s]));
    expect(by.a.transferS).toBe(0);
    expect(by.b.transferS).toBeCloseTo(10e9 * 8 / 8e9 + 0.01, 9); // 10.01 s
    expect(by.c.transferS).toBeCloseTo(10e9 * 8 / 1e9 + 0.05, 9); // 80.05 s
    expect(by.b.transferBytes).toBe(10e9);
    expect(d.site).toBe('b');
  });

  test('the wait at home can be worth less than moving a large input', () => {
    const data: RoutedDataset = { id: 'ds-a-00000001', site: 'a', sizeBytes: 2e12, classification: 'public' }; // 2 TB: 2000 s to b
    const d = routeJob(input({ inputs: [data] }));
    expect(d.kind === 'routed' && d.site).toBe('a');
  });

  test('a site silent for longer than staleAfterMs is not chosen', () => {
    const d = routeJob(input({ summaries: new Map([['a', summary('a', BUSY)], ['b', summary('b', IDLE, NOW - 6_000)], ['c', summary('c', IDLE)]]) }));
    expect(d.kind === 'routed' && d.site).toBe('c');
    expect(d.refusals).toContainEqual({ site: 'b', reason: 'silent for 6.0s' });
  });

  test('carbon and price, weighted into seconds, break a tie of waits', () => {
    // 4 cores for an hour: 40 W × 1 h = 0.04 kWh; at 500 g/kWh: 20 g at a and c (no green), 10 g at b (half green).
    const weights = { secondsPerKgCo2: 1000, secondsPerYuan: 0, preferHomeWithinS: 5 };
    const d = routeJob(input({ federation: federation(weights), job: job({ resources: { cpuMillis: 4000, memBytes: GiB, gpus: 0, gpuMilli: 0 }, durationSeconds: 3600 }), summaries: new Map([['a', summary('a', IDLE)], ['b', summary('b', IDLE)], ['c', summary('c', IDLE)]]) }));
    if (d.kind !== 'routed') throw new Error(d.reason);
    const by = Object.fromEntries(d.scores.map((s) => [s.site, s]));
    expect(by.a.carbonKg).toBeCloseTo(0.02, 9);
    expect(by.b.carbonKg).toBeCloseTo(0.01, 9);
    expect(by.a.priceYuan).toBeCloseTo(0.4, 9); // 4 cores × ¥0.1 × 1 h
    expect(by.a.score).toBeCloseTo(20, 9);
    expect(by.b.score).toBeCloseTo(10, 9);
    expect(d.site).toBe('b'); // better than home by 10 s > 5 s
  });

  test('a live green share from the summary replaces the file\'s', () => {
    const weights = { secondsPerKgCo2: 1000, secondsPerYuan: 0, preferHomeWithinS: 0 };
    const d = routeJob(input({ federation: federation(weights), job: job({ resources: { cpuMillis: 4000, memBytes: GiB, gpus: 0, gpuMilli: 0 }, durationSeconds: 3600 }), summaries: new Map([['a', summary('a', IDLE, NOW, 1)], ['b', summary('b', IDLE)], ['c', summary('c', IDLE)]]) }));
    expect(d.kind === 'routed' && d.site).toBe('a'); // all green at home: 0 kg
  });

  test('the job\'s own list of sites limits the choice', () => {
    const d = routeJob(input({ job: job({ sites: ['c'] }) }));
    expect(d.kind === 'routed' && d.site).toBe('c');
  });

  test('sites that gave the job back are not chosen again', () => {
    const d = routeJob(input({ exclude: ['b'] }));
    expect(d.kind === 'routed' && d.site).toBe('c');
  });

  test('a task larger than any node there, or a missing pool, refuses the site', () => {
    const d = routeJob(input({ job: job({ pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: GiB, gpus: 1, gpuMilli: 0 } }) }));
    expect(d.kind).toBe('infeasible');
    expect(d.reason).toBe('a: has no intelligent pool; b: no intelligent nodes; c: has no intelligent pool');
    const big = routeJob(input({ job: job({ resources: { cpuMillis: 16_000, memBytes: GiB, gpus: 0, gpuMilli: 0 } }) }));
    expect(big.kind === 'infeasible' && big.reason).toContain('a: no general node is large enough for one task');
  });
});

describe('federation file', () => {
  test('a link to an unknown site and a site listed twice are refused with their paths', () => {
    const r = federationFileSchema.safeParse({ sites: [{ name: 'a', pools: ['general'] }, { name: 'a', pools: ['general'] }], links: [{ between: ['a', 'z'], bandwidthGbps: 1, latencyMs: 1 }] });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['sites.1.name: site a is listed twice', 'links.0.between: unknown site z']);
  });
});

describe('offers not yet in a summary', () => {
  test('count as waiting demand at the site they went to, until a newer summary covers them', () => {
    const offers = [
      { site: 'b', pool: 'general' as const, atMs: NOW + 10, cpuMillis: 16_000, gpuMilli: 0 },
      { site: 'c', pool: 'general' as const, atMs: NOW - 10, cpuMillis: 16_000, gpuMilli: 0 }, // older than c's summary: already in it
    ];
    const summaries = withRecentOffers(input().summaries, offers);
    expect(summaries.get('b')!.pools.general!.pendingCpuMillis).toBe(16_000);
    expect(summaries.get('c')!.pools.general!.pendingCpuMillis).toBe(0);
    // b now waits (16000 + 2000 - 16000) / 16000 × 600 = 75 s: the next job goes to c.
    const d = routeJob(input({ summaries }));
    expect(d.kind === 'routed' && d.site).toBe('c');
  });
});

test('the example federation file is valid', async () => {
  const { loadDataFile } = await import('../../src/files');
  const file = loadDataFile('configs/federation.example.yaml', federationFileSchema);
  expect(file.sites.map((s) => s.name)).toEqual(['qy-a', 'qy-b', 'xa']);
});
