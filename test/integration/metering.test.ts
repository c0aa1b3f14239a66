import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { DEFAULT_PRICE_TABLE, type Bill, type UsageSummary } from '../../src/billing';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import type { TaskUsage } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

const HOUR = 3_600_000;
/** A node whose draw is easy to reason about: 1 MW rated, 1,024 cores; the agents' green share is 0.6. */
const RATED_W = 1_000_000;
const GREEN = 0.6;
const PUE = 1.25;
const GRID_G_PER_KWH = 550;

let nats: LocalNatsServer;
let s: TestScheduler;
let agent: Agent;

beforeAll(async () => {
  nats = await startNatsServer();
  s = await startScheduler(nats.url, { pue: String(PUE), carbonIntensityGPerKwh: String(GRID_G_PER_KWH), powerBudgetsKw: '{"general": 0.4}' });
  agent = await startAgent(nats.url, 'meter', [testNode('big-1', 'super', { ratedPowerWatts: RATED_W, capacity: { cpuMillis: 1_024_000, memBytes: 64 * 1024 ** 3 } }), testNode('gen-1', 'general')]);
  await waitForNodes(s.operator, ['big-1', 'gen-1']);
});

afterAll(async () => {
  await s?.close();
  await agent?.stop();
  await nats?.dispose();
});

/** The local (UTC+8) time-of-use multiplier of an hour, from the price table. */
function multiplierBp(hourStartMs: number): number {
  const local = (new Date(hourStartMs).getUTCHours() + 8) % 24;
  return DEFAULT_PRICE_TABLE.timeOfUse.find((band) => band.hours.some(([from, to]) => local >= from && local < to))!.multiplierBp;
}

describe('metering and billing, end to end', () => {
  test("a job's usage and bill lines are what its node's power, green share and the prices give by hand", async () => {
    const id = await s.api.submit({ pool: 'super', resources: { cpuMillis: 1000, memBytes: 0 }, walltimeSeconds: 60, command: ['sleep', '1'] });
    expect((await s.api.waitFor(id, ['succeeded', 'failed'])).state).toBe('succeeded');
    const usage = await waitUntil(() => s.scheduler.store.usage.all().find((u) => u.jobId === id), 10_000, () => 'no metered usage');

    // The job held the node whole: it is charged the node's full draw, 1 MW, for the time it ran.
    for (const seg of usage.segments) {
      const itMilliWh = Math.round((RATED_W * seg.runMs) / 3600); // W × ms / 3600 = mWh
      const energy = Math.round(itMilliWh * PUE);
      const green = Math.min(energy, Math.round(Math.round(((RATED_W * seg.runMs) / 3600) * GREEN) * PUE));
      expect(seg).toMatchObject({
        cpuMilliSeconds: Math.round((1_024_000 * seg.runMs) / 1000),
        energyMilliWh: energy,
        greenMilliWh: green,
        carbonMg: Math.round(((energy - green) * GRID_G_PER_KWH) / 1000),
      });
    }
    const runMs = usage.segments.reduce((n, x) => n + x.runMs, 0);
    expect(runMs).toBeGreaterThanOrEqual(900);

    // The usage API sums the same integers.
    const period = new Date(Date.now() + 8 * HOUR).toISOString().slice(0, 7);
    const summary = (await s.api.request<UsageSummary>('GET', `/v1/usage?period=${period}&jobId=${id}`)).body;
    expect(summary.total.energyMilliWh).toBe(usage.segments.reduce((n, x) => n + x.energyMilliWh, 0));
    expect(summary.total.cpuMilliSeconds).toBe(usage.segments.reduce((n, x) => n + x.cpuMilliSeconds, 0));

    // The bill: the super pool's core-hour and kWh prices, the energy price with its time-of-use band.
    const bill = (await s.api.request<Bill>('GET', `/v1/bills/city-a/${period}`)).body;
    const prices = DEFAULT_PRICE_TABLE.pools.super.pricesMilliFen;
    const cpuLine = bill.lines.find((l) => l.pool === 'super' && l.item === 'cpu')!;
    const cpuMilliSeconds = usage.segments.reduce((n, x) => n + x.cpuMilliSeconds, 0);
    // milli-core seconds → core-hours (÷ 3.6e6), milli-fen → fen (÷ 1000).
    expect(cpuLine.amountFen).toBe(Math.round((cpuMilliSeconds * prices.cpu) / 3.6e9));
    // A line sums the energy of every hour in its time-of-use band, then rounds once: a job that ran across the
    // hour has two segments, and in the same band they make one line (seen at 02:00 UTC in CI).
    const energyByUnit = new Map<number, number>();
    for (const seg of usage.segments) {
      const unitMilliFen = Math.min(DEFAULT_PRICE_TABLE.pools.super.ceilingsMilliFen.energy!, (prices.energy * multiplierBp(seg.hourStartMs)) / 10_000);
      energyByUnit.set(unitMilliFen, (energyByUnit.get(unitMilliFen) ?? 0) + seg.energyMilliWh);
    }
    for (const [unitMilliFen, energyMilliWh] of energyByUnit) {
      const line = bill.lines.find((l) => l.pool === 'super' && l.item === 'energy' && l.unitPriceMilliFen === unitMilliFen)!;
      // mWh × milli-fen per kWh ÷ 1e9 = fen, rounded half up in integers as the bill does: two divisions in
      // floating point first once made 31.5 fen into 31.4999… (31 against the bill's 32).
      expect(line.amountFen).toBe(Math.floor((energyMilliWh * unitMilliFen + 5e8) / 1e9));
    }
    expect(bill.totals.amountFen).toBe(bill.lines.reduce((n, l) => n + l.amountFen, 0));
    expect(bill.totals.amountFen).toBeGreaterThan(0);
  });

  test('/v1/usage/tasks lists the records /v1/usage sums, one per task, a tenant only its own', async () => {
    const period = new Date(Date.now() + 8 * HOUR).toISOString().slice(0, 7);
    const ledger = s.scheduler.store.usage.all().filter((u) => u.tenant === 'city-a');
    expect(ledger.length).toBeGreaterThan(0);
    const listed = (await s.api.request<{ items: TaskUsage[] }>('GET', `/v1/usage/tasks?period=${period}`)).body.items;
    expect(listed.map((u) => `${u.attemptId}/${u.taskIndex}`).sort()).toEqual(ledger.map((u) => `${u.attemptId}/${u.taskIndex}`).sort());
    const summary = (await s.api.request<UsageSummary>('GET', `/v1/usage?period=${period}`)).body;
    expect(listed.flatMap((u) => u.segments).reduce((n, x) => n + x.cpuMilliSeconds, 0)).toBe(summary.total.cpuMilliSeconds);
    expect((await s.as('city-b').request<{ items: TaskUsage[] }>('GET', `/v1/usage/tasks?period=${period}`)).body.items).toEqual([]);
    expect((await s.as('city-b').request('GET', `/v1/usage/tasks?period=${period}&tenant=city-a`)).status).toBe(404);
  });

  test('usage survives a rebuild from the job log, and bills come as CSV', async () => {
    const before: TaskUsage[] = s.scheduler.store.usage.all();
    await s.scheduler.rebuild('test');
    expect(s.scheduler.store.usage.all()).toEqual(before);
    const period = new Date(Date.now() + 8 * HOUR).toISOString().slice(0, 7);
    const csv = await fetch(`${s.url}/v1/bills/city-a/${period}?format=csv`, { headers: { authorization: `Bearer ${s.tokens['city-a']}` } });
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect((await csv.text()).split('\r\n')[0]).toMatch(/^tenant,period,/);
  });

  test('tenants see only their own usage and bills; the disclosure report is for operators', async () => {
    const period = new Date(Date.now() + 8 * HOUR).toISOString().slice(0, 7);
    expect((await s.as('city-b').request('GET', `/v1/bills/city-a/${period}`)).status).toBe(404);
    expect((await s.as('city-b').request('GET', `/v1/usage?period=${period}&tenant=city-a`)).status).toBe(404);
    const own = (await s.as('city-b').request<UsageSummary>('GET', `/v1/usage?period=${period}`)).body;
    expect(own.total.jobs).toBe(0);
    expect((await s.api.request('GET', `/v1/disclosure/${period}`)).status).toBe(403);
    const md = await fetch(`${s.url}/v1/disclosure/${period}?format=md`, { headers: { authorization: `Bearer ${s.tokens.ops}` } });
    expect(md.status).toBe(200);
    expect(await md.text()).toMatch(/city-a/);
    const bad = await s.api.request<{ code: string }>('GET', '/v1/usage?period=2026-13');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('QY_ERR_VALIDATION');
  });

  test('qy usage, qy bill --csv and qy disclosure --markdown', async () => {
    const period = new Date(Date.now() + 8 * HOUR).toISOString().slice(0, 7);
    const qy = async (who: string, ...args: string[]) =>
      (await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/qy.ts', '--server', s.url, ...args], { env: { ...process.env, QY_TOKEN: s.tokens[who] } })).stdout;
    expect(await qy('city-a', 'usage', '--period', period)).toMatch(/^TENANT \/ POOL\s+JOBS\s+CORE-H/);
    expect(await qy('city-a', 'bill', 'city-a', period, '--csv')).toMatch(/^tenant,period,/);
    expect(await qy('ops', 'disclosure', period, '--markdown')).toMatch(/^# /);
  }, 30_000);

  test('a power cap holds a job back and its pending reason says so', async () => {
    // gen-1 idles at 175 W of its 500 W; the general pool's cap is 400 W: a job on all 8 cores would add 325 W.
    const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 8000, memBytes: 0 }, command: ['true'] });
    const job = await waitUntil(async () => {
      const j = await s.api.job(id);
      return j.pendingReason ? j : undefined;
    }, 10_000);
    expect(job.state).toBe('pending');
    expect(job.pendingReason).toMatch(/^held by the power budget of pool general: 0\.2 of 0\.4 kW estimated in use, this job adds 0\.3 kW$/);
    await s.api.request('DELETE', `/v1/jobs/${id}`);
  });
});
