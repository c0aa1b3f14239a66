import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { arrivalsBy } from '../../loadtests/engine';
import { findMaxRate } from '../../loadtests/find-max';
import { runScenario, type Target } from '../../loadtests/load';
import { reportSchema, summarySchema, writeReports } from '../../loadtests/report';
import { arrivalAt, compileScenario, loadScenarios, localTenants, parseDuration, rateProfile, tokenOf, type ScenarioFile } from '../../loadtests/scenarios';
import { classify } from '../../loadtests/stats';
import { weightedCycle } from '../../loadtests/k6/templates.js';
import { startLocalStack, type LocalStack } from '../../harness/stack';
import { jobSpecSchema } from '../../src/protocol';

const run = promisify(execFile);
const file = loadScenarios();
const SCENARIOS = ['steady', 'burst', 'spike', 'status-polling', 'noisy-tenant', 'gang-heavy'];
const dir = mkdtempSync(join(tmpdir(), 'qy-loadtests-'));

// The k6 modules do not exist in Node: lib.js runs here against stand-ins that record its requests.
const k6 = vi.hoisted(() => ({ iteration: 0, requests: [] as { method: string; url: string; body?: string; params: { headers: Record<string, string>; tags: Record<string, string> } }[] }));
vi.mock('k6/execution', () => ({ default: { scenario: { get iterationInTest() { return k6.iteration; } } } }));
vi.mock('k6/http', () => ({
  default: {
    expectedStatuses: () => 'expected-statuses',
    post: (url: string, body: string, params: never) => (k6.requests.push({ method: 'POST', url, body, params }), { status: 202, json: () => `job-${k6.requests.length}` }),
    get: (url: string, params: never) => (k6.requests.push({ method: 'GET', url, params }), { status: 200, json: () => undefined }),
  },
}));
const K6_TOKENS = Array.from({ length: 8 }, (_, i) => `token-${i}`);

/** lib.js as k6 loads it: open() reads next to the script, __ENV holds the tokens. */
async function importK6Lib(): Promise<typeof import('../../loadtests/k6/lib.js')> {
  Object.assign(globalThis, { open: (path: string) => readFileSync(join('loadtests/k6', path), 'utf8'), __ENV: { K6_QY_TOKENS: K6_TOKENS.join(',') } });
  return import('../../loadtests/k6/lib.js');
}

describe('scenarios are defined once, in loadtests/scenarios.json', () => {
  test('the file is valid and has every scenario, each template makes a valid job', () => {
    expect(Object.keys(file.scenarios).sort()).toEqual([...SCENARIOS].sort());
    for (const name of SCENARIOS) {
      const plan = compileScenario(file, name);
      for (let seq = 0; seq < 200; seq++) {
        const { body } = arrivalAt(plan, seq);
        if (body) expect(jobSpecSchema.safeParse(body).success, `${name} #${seq}`).toBe(true);
      }
    }
  });

  test('gang-heavy sends mostly gangs of the super pool, with a walltime', () => {
    const plan = compileScenario(file, 'gang-heavy');
    const bodies = Array.from({ length: plan.templateCycle.length }, (_, seq) => arrivalAt(plan, seq).body!);
    const gangs = bodies.filter((b) => b.pool === 'super' && (b.tasks ?? 1) > 1);
    expect(gangs.length / bodies.length).toBeGreaterThan(0.5);
    expect(bodies.filter((b) => b.pool === 'super').every((b) => b.walltimeSeconds !== undefined)).toBe(true);
  });

  test('a wrong file is refused, naming the field', () => {
    const path = join(dir, 'wrong.json');
    const wrong = structuredClone(file) as ScenarioFile;
    wrong.scenarios.steady.mix = { 'no-such-template': 1 };
    wrong.templates['super-node'].walltimeSeconds = undefined;
    writeFileSync(path, JSON.stringify(wrong));
    expect(() => loadScenarios(path)).toThrow(/scenarios\.steady\.mix\.no-such-template: no template/);
    expect(() => loadScenarios(path)).toThrow(/templates\.super-node: as a job: walltimeSeconds/);
  });
});

describe('what each arrival does', () => {
  test('weighted cycles repeat each name as often as its weight, spread out', () => {
    const cycle = weightedCycle({ a: 5, b: 3, c: 2 });
    expect(cycle).toHaveLength(10);
    expect(cycle.filter((n) => n === 'a')).toHaveLength(5);
    expect(cycle.filter((n) => n === 'c')).toHaveLength(2);
    expect(cycle.join('')).not.toMatch(/aaa/);
  });

  test('requests, templates and tenants follow their weights; reads do not skew the template mix', () => {
    const plan = compileScenario(file, 'status-polling');
    const arrivals = Array.from({ length: 400 }, (_, seq) => arrivalAt(plan, seq));
    expect(arrivals.filter((a) => a.kind === 'submit')).toHaveLength(40);
    expect(arrivals.filter((a) => a.kind === 'get')).toHaveLength(240);
    const submitted = arrivals.flatMap((a) => (a.body ? [a.body] : []));
    expect(submitted.filter((b) => b.pool === 'intelligent')).toHaveLength(10);
    expect(new Set(submitted.map((b) => b.name)).size).toBe(40);

    const noisy = compileScenario(file, 'noisy-tenant');
    const tenants = Array.from({ length: 200 }, (_, seq) => arrivalAt(noisy, seq).tenant);
    expect(tenants.filter((t) => t === 'noisy')).toHaveLength(130);
    expect(new Set(tenants).size).toBe(8);
  });

  test('429s are expected only from a tenant meant to exceed its rate limit', () => {
    expect(classify(202, false)).toBe('ok');
    expect(classify(429, true)).toBe('limited');
    expect(classify(429, false)).toBe('error');
    expect(classify(503, true)).toBe('error');
  });
});

describe('arrival profiles', () => {
  test('a constant rate, overridden by --rate and --duration', () => {
    const profile = rateProfile(file.scenarios.steady.arrival, { rate: 1000, durationS: 30 });
    expect(profile).toMatchObject({ constant: true, peakRate: 1000, durationS: 30, stages: [{ durationS: 30, target: 1000 }] });
    expect(arrivalsBy(profile, 30)).toBe(30_000);
  });

  test('bursts jump above the base rate once a period; --rate scales the peak and the base with it', () => {
    const profile = rateProfile({ kind: 'burst', baseRate: 100, burstRate: 500, periodS: 10, burstS: 2, durationS: 20 }, { rate: 1000 });
    expect(profile.peakRate).toBe(1000);
    expect(profile.stages.filter((s) => s.target === 1000 && s.durationS === 2)).toHaveLength(2);
    expect(arrivalsBy(profile, 20)).toBe(2 * (8 * 200 + 2 * 1000));
    // A run shorter than a period keeps the nominal peak, so --rate means the same whatever the duration.
    expect(rateProfile({ kind: 'burst', baseRate: 100, burstRate: 500, periodS: 10, burstS: 2, durationS: 20 }, { rate: 1000, durationS: 1 }).startRate).toBe(200);
  });

  test('stages ramp linearly and stretch with --duration', () => {
    const profile = rateProfile({ kind: 'stages', startRate: 0, stages: [{ durationS: 10, target: 100 }, { durationS: 10, target: 100 }] }, { durationS: 40 });
    expect(profile.durationS).toBe(40);
    expect(arrivalsBy(profile, 20)).toBe(1000);
    expect(arrivalsBy(profile, 40)).toBe(3000);
  });

  test('durations are written 30s, 2m, 500ms or as seconds', () => {
    expect([parseDuration('30s'), parseDuration('2m'), parseDuration('500ms'), parseDuration('45')]).toEqual([30, 120, 0.5, 45]);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
  });
});

describe('k6 scripts', () => {
  test('every scenario has a script, and every script parses as an ES module', async () => {
    const scripts = readdirSync('loadtests/k6').filter((f) => f.endsWith('.js'));
    expect(scripts).toEqual(expect.arrayContaining(SCENARIOS.map((s) => `${s}.js`)));
    await Promise.all(scripts.map((f) => run(process.execPath, ['--check', join('loadtests/k6', f)])));
  });

  test('options use arrival-rate executors and state the thresholds in k6 form', async () => {
    const { k6Scenario } = await importK6Lib();
    expect(k6Scenario('steady').options.scenarios.steady).toMatchObject({ executor: 'constant-arrival-rate', rate: 500, timeUnit: '1s', duration: '60000ms' });
    expect(k6Scenario('spike').options.scenarios.spike).toMatchObject({ executor: 'ramping-arrival-rate', startRate: 100 });
    expect(k6Scenario('burst').options.scenarios.burst.executor).toBe('ramping-arrival-rate');
    expect(k6Scenario('status-polling').options.thresholds).toEqual({
      'http_req_duration{kind:submit}': ['p(99)<50'],
      'http_req_duration{kind:get}': ['p(99)<100'],
      'http_req_duration{kind:list}': ['p(99)<100'],
      http_req_failed: ['rate<0.01'],
    });
  });

  test('k6 sends the same requests as the Node runner: kinds, tenants, tokens and job bodies', async () => {
    const { k6Scenario } = await importK6Lib();
    for (const name of SCENARIOS) {
      const plan = compileScenario(file, name);
      const script = k6Scenario(name);
      for (let seq = 0; seq < 60; seq++) {
        k6.iteration = seq;
        k6.requests.length = 0;
        script.run({ ids: { load: ['job-0'] } });
        const expected = arrivalAt(plan, seq);
        const [sent] = k6.requests;
        expect(sent.params.tags).toEqual({ kind: expected.kind, tenant: expected.tenant });
        expect(sent.params.headers.authorization).toBe(`Bearer ${tokenOf(plan, expected.tenant, K6_TOKENS)}`);
        if (expected.body) expect(JSON.parse(sent.body!)).toEqual(expected.body);
        else expect(sent.method).toBe('GET');
      }
    }
  });
});

describe('find-max', () => {
  const fakeTrial = (limit: number) => async (rate: number) => ({ passed: rate <= limit, result: { p99Ms: rate / 100 } });

  test('grows the rate, then bisects to within the precision of the highest passing rate', async () => {
    const search = await findMaxRate(fakeTrial(1234), { startRate: 100, maxRate: 100_000 });
    expect(search.maxRate).toBeLessThanOrEqual(1234);
    expect(search.maxRate).toBeGreaterThan(1234 * 0.95);
    expect(search.best).toEqual({ rate: search.maxRate, passed: true, result: { p99Ms: search.maxRate / 100 } });
    expect(search.trials.slice(0, 6).map((t) => t.rate)).toEqual([100, 200, 400, 800, 1600, 1200]);
  });

  test('stops at the highest rate allowed, finds 0 when nothing passes, and keeps to the trial budget', async () => {
    expect((await findMaxRate(fakeTrial(1e9), { startRate: 100, maxRate: 1000 })).maxRate).toBe(1000);
    const none = await findMaxRate(fakeTrial(0), { startRate: 100, maxRate: 1000 });
    expect(none.maxRate).toBe(0);
    expect(none.best).toBeUndefined();
    expect((await findMaxRate(fakeTrial(777_777), { startRate: 1, maxRate: 1e6, maxTrials: 5 })).trials).toHaveLength(5);
  });
});

describe('runs against a real scheduler', () => {
  let stack: LocalStack;
  const tokensOf = (name: string) => compileScenario(file, name).tenantNames.map((t) => stack.tokens[t]);
  const target = (name: string): Target => ({ url: stack.url, tokens: tokensOf(name), localNodes: 40 });

  beforeAll(async () => {
    // The noisy tenant may send 5 requests a second here, so that a brief, slow run still exceeds it.
    const tenants = localTenants(file).map((t) => (t.name === 'noisy' ? { ...t, requestsPerSecond: 5 } : t));
    stack = await startLocalStack({ nodes: 40, tenants, prefix: 'loadtest' });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  test.each(SCENARIOS)('%s runs briefly, its requests succeed, and its reports are written', async (name) => {
    const report = await runScenario(file, name, target(name), { rate: 40, durationS: 1.5 });
    const out = join(dir, name);
    writeReports(report, out);
    const written = reportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
    expect(written.totals.sent).toBeGreaterThan(0);
    expect(written.totals.ok).toBeGreaterThan(0);
    expect(written.errorsByKind).toEqual({});
    expect(written.totals.sent).toBe(written.totals.ok + written.totals.limited);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).not.toMatch(/<script|<link|src=|href=/);
  });

  test('status-polling reads jobs it submitted before the run', async () => {
    const report = await runScenario(file, 'status-polling', target('status-polling'), { rate: 40, durationS: 1 });
    expect(report.prefilled).toBe(file.scenarios['status-polling'].reads!.prefill);
    expect(report.byKind.get.ok).toBeGreaterThan(0);
    expect(report.byKind.list.ok).toBeGreaterThan(0);
  });

  test("noisy-tenant: the noisy tenant's 429s count as limited, not as errors; every tenant is reported", async () => {
    const report = await runScenario(file, 'noisy-tenant', target('noisy-tenant'), { rate: 40, durationS: 1.5 });
    expect(report.byTenant.noisy.limited).toBeGreaterThan(0);
    expect(report.totals.errors).toBe(0);
    expect(Object.keys(report.byTenant).sort()).toEqual(compileScenario(file, 'noisy-tenant').tenantNames.sort());
    expect(report.byTenant['quiet-1'].limited).toBe(0);
  });

  test('the CLI prints a final JSON line, writes the reports and, with --check, exits 3 when a threshold fails', async () => {
    // An error rate below 0 cannot be met: the verdict is known whatever the machine's speed.
    const strict = structuredClone(file) as ScenarioFile;
    strict.scenarios.steady.thresholds.errorRate = 0;
    const scenarios = join(dir, 'strict.json');
    writeFileSync(scenarios, JSON.stringify(strict));
    const out = join(dir, 'cli');
    const args = ['--import', 'tsx', 'loadtests/run.ts', '--scenarios', scenarios, '--scenario', 'steady', '--rate', '20', '--duration', '1s', '--warmup', '0'];
    const failed = await run(process.execPath, [...args, '--url', stack.url, '--token', stack.tokens.load, '--out', out, '--quiet', '--check']).catch((err: { code: number; stdout: string }) => err);
    expect('code' in failed ? failed.code : 0).toBe(3);
    const summary = summarySchema.parse(JSON.parse(failed.stdout.trim().split('\n').at(-1)!));
    expect(summary).toMatchObject({ scenario: 'steady', rate: 20, durationS: 1, sent: 20, ok: 20, errors: 0, thresholdsPassed: false, out });
    expect(existsSync(join(out, 'report.json')) && existsSync(join(out, 'report.html'))).toBe(true);
  });
});
