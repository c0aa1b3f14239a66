import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { launchChromium, type LocalBrowser } from '../../harness/chromium';
import { freePort } from '../../harness/ports';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { startPrometheus, type LocalPrometheus } from '../../harness/prometheus';
import type { JobSpecInput, NodeView } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { startAgent, startScheduler, testNode, waitForNodes, type TestScheduler } from '../helpers/stack';

/**
 * The web console in a real browser (Debian's chromium, headless, driven by playwright-core) against a real
 * stack: nats-server, the scheduler, an agent of ten virtual nodes and a Prometheus scraping the scheduler.
 * Every page is saved as a screenshot: to QY_SCREENSHOTS_DIR (`npm run screenshots` writes docs/console/),
 * else to a temporary folder.
 */
const GiB = 1024 ** 3;
const SHOTS = process.env.QY_SCREENSHOTS_DIR ?? mkdtempSync(join(tmpdir(), 'qy-console-shots-'));
const UI_TIMEOUT_MS = 30_000;

let nats: LocalNatsServer;
let s: TestScheduler;
let agent: Agent;
let prom: LocalPrometheus;
let browser: LocalBrowser;
let ops: Page;
const pageErrors: string[] = [];

const NODES = [
  testNode('gen-a1', 'general', { rack: 'a' }),
  testNode('gen-a2', 'general', { rack: 'a' }),
  testNode('gen-a3', 'general', { rack: 'a' }),
  testNode('gen-b1', 'general', { rack: 'b' }),
  testNode('gen-b2', 'general', { rack: 'b' }),
  testNode('gpu-1', 'intelligent', { rack: 'g' }),
  testNode('gpu-2', 'intelligent', { rack: 'g' }),
  testNode('gpu-3', 'intelligent', { rack: 'g' }),
  testNode('hpc-1', 'super', { rack: 'h' }),
  testNode('hpc-2', 'super', { rack: 'h' }),
];

/** The month of bills now, as the console picks it (the cluster's time zone, UTC+8). */
const period = () => new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 7);

beforeAll(async () => {
  nats = await startNatsServer();
  // Prometheus' port first, so the scheduler can be told where it is; Prometheus scrapes it once it listens.
  const promPort = await freePort();
  s = await startScheduler(nats.url, { prometheusUrl: `http://127.0.0.1:${promPort}` }, {
    operators: ['ops'],
    tenants: [
      { name: 'city-a', displayName: 'City A Data Bureau', weight: 2, requestsPerSecond: 10_000, quotas: { intelligent: { gpus: 8 } } },
      { name: 'city-b', requestsPerSecond: 10_000 },
    ],
  });
  agent = await startAgent(nats.url, 'console', NODES, 'virtual');
  await waitForNodes(s.operator, NODES.map((n) => n.id));
  prom = await startPrometheus([new URL(s.url).host], 1, { port: promPort });
  // A workload to look at: jobs that run for the whole test (GPU shares among them), a gang that must wait,
  // and short jobs that finish and are metered (the bill).
  const long = (spec: Omit<JobSpecInput, 'durationSeconds'>): JobSpecInput => ({ ...spec, durationSeconds: 600 });
  await Promise.all([
    s.api.submit(long({ name: 'etl-nightly', pool: 'general', resources: { cpuMillis: 4000, memBytes: 8 * GiB } })),
    s.as('city-b').submit(long({ name: 'traffic-model', pool: 'general', resources: { cpuMillis: 6000, memBytes: 16 * GiB } })),
    s.as('city-b').submit(long({ name: 'train-llm', pool: 'intelligent', resources: { cpuMillis: 4000, memBytes: 16 * GiB, gpus: 2 } })),
    ...[1, 2, 3].map((i) => s.api.submit(long({ name: `infer-${i}`, pool: 'intelligent', resources: { cpuMillis: 1000, memBytes: 4 * GiB, gpuMilli: 250 } }))),
    s.as('city-b').submit(long({ name: 'weather-mpi', pool: 'super', tasks: 2, walltimeSeconds: 1200, resources: { cpuMillis: 4000, memBytes: 8 * GiB } })),
    ...[1, 2, 3].map((i) => s.api.submit({ name: `report-${i}`, pool: 'general', resources: { cpuMillis: 2000, memBytes: 4 * GiB }, durationSeconds: 1 })),
  ]);
  await s.as('city-b').submit({ name: 'big-gang', pool: 'intelligent', tasks: 3, resources: { cpuMillis: 4000, memBytes: 8 * GiB, gpus: 4 }, durationSeconds: 60 });
  browser = await launchChromium();
  ops = await signedInPage(s.tokens.ops);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await prom?.dispose();
  await s?.close();
  await agent?.stop();
  await nats?.dispose();
});

/** A new tab (its own sessionStorage) signed in with `token`. */
async function signedInPage(token: string): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${s.url}/ui/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.page[data-ready="true"]').waitFor({ timeout: UI_TIMEOUT_MS });
  return page;
}

/** Loads a page of the console afresh and waits until it shows its data. */
async function open(page: Page, path: string): Promise<void> {
  await page.goto('about:blank');
  await page.goto(`${s.url}/ui/#/${path}`);
  await page.locator('.page[data-ready="true"]').waitFor({ timeout: UI_TIMEOUT_MS });
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Form controls without a label (a <label>, aria-label or their own text): there must be none. (Run in the page, so written as its source: the tests are type-checked without the DOM's types.) */
function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(`[...document.querySelectorAll('input, select, button')]
    .filter((e) => !(e.labels && e.labels.length > 0) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.outerHTML.slice(0, 120))`);
}

/** The signed-in token of a tab. */
const storedToken = (page: Page) => page.evaluate('sessionStorage.getItem("qy-token")');

describe('the web console in Chromium', () => {
  test('sign-in with a token kept in sessionStorage, never in the URL', async () => {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${s.url}/ui/`);
    await screenshot(page, 'sign-in');
    await page.getByLabel('API token').fill('qy_not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor({ timeout: UI_TIMEOUT_MS });
    await page.getByLabel('API token').fill(s.tokens.ops);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.whoami').getByText('ops').waitFor();
    expect(await storedToken(page)).toBe(s.tokens.ops);
    expect(page.url()).not.toContain(s.tokens.ops);
    // Still signed in after a reload of the tab; signed out for good after "Sign out".
    await page.reload();
    await page.locator('.page[data-ready="true"]').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(await storedToken(page)).toBeNull();
    await page.close();
  });

  test("a tenant sees its own jobs only, and no operator's page", async () => {
    const tenant = await signedInPage(s.tokens['city-b']);
    await open(tenant, 'jobs');
    const other = await s.api.submit({ name: 'city-a-secret', pool: 'general', resources: { cpuMillis: 100, memBytes: GiB }, durationSeconds: 600 });
    const own = await s.as('city-b').submit({ name: 'city-b-own', pool: 'general', resources: { cpuMillis: 100, memBytes: GiB }, durationSeconds: 600 });
    // The list refreshes itself: once it shows the job submitted after the other tenant's, it has seen both.
    await tenant.locator(`tr[data-job="${own}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await tenant.locator(`tr[data-job="${other}"]`).count()).toBe(0);
    expect(await tenant.getByText('city-a-secret').count()).toBe(0);
    const nav = tenant.getByRole('navigation');
    expect(await nav.getByRole('link').allTextContents()).toEqual(['Overview', 'Jobs', 'Tenants', 'Usage and bills', 'Green power']);
    await open(tenant, `jobs/${other}`);
    await tenant.getByRole('alert').filter({ hasText: `Job ${other} was not found` }).waitFor({ timeout: UI_TIMEOUT_MS });
    await open(tenant, 'tenants');
    expect(await tenant.locator('article.tenant').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-tenant')))).toEqual(['city-b']);
    await tenant.close();
  });

  test('a job submitted through the API appears in the list and finishes', async () => {
    await open(ops, 'jobs');
    const id = await s.api.submit({ name: 'quick-etl', pool: 'general', resources: { cpuMillis: 1000, memBytes: GiB }, durationSeconds: 2 });
    const row = ops.locator(`tr[data-job="${id}"]`);
    await row.waitFor({ timeout: UI_TIMEOUT_MS });
    await row.getByText('quick-etl').waitFor();
    await row.locator('.badge', { hasText: 'succeeded' }).waitFor({ timeout: UI_TIMEOUT_MS });
    expect((await s.api.job(id)).state).toBe('succeeded');
    expect(await unlabelled(ops)).toEqual([]);
    await screenshot(ops, 'jobs');
  });

  test('cancel from the job page, after a confirmation', async () => {
    const id = await s.api.submit({ name: 'to-cancel', pool: 'general', resources: { cpuMillis: 500, memBytes: GiB }, durationSeconds: 600 });
    await s.api.waitFor(id, ['running']);
    await open(ops, `jobs/${id}`);
    await ops.getByRole('button', { name: 'Cancel job' }).click();
    const dialog = ops.getByRole('dialog', { name: 'Cancel to-cancel?' });
    await dialog.waitFor();
    await screenshot(ops, 'job-cancel');
    await dialog.getByRole('button', { name: 'Cancel the job' }).click();
    await s.api.waitFor(id, ['cancelled']);
    await ops.locator('.job-head .badge', { hasText: 'cancelled' }).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await ops.getByRole('button', { name: 'Cancel job' }).count()).toBe(0);
  });

  test('cordon and uncordon a node from the node grid, which shows GPU shares per device', async () => {
    await open(ops, 'nodes');
    // Three jobs of a quarter GPU each: a GPU shows as partly taken.
    await waitUntil(async () => ((await ops.locator('.gpu.part').count()) > 0 ? true : undefined), UI_TIMEOUT_MS, () => 'no GPU shown partly in use');
    await ops.locator('button[data-node="gen-a1"]').click();
    await ops.getByRole('button', { name: 'Cordon', exact: true }).click();
    await waitUntil(async () => ((await s.operator.request<NodeView>('GET', '/v1/nodes/gen-a1')).body.cordoned ? true : undefined), UI_TIMEOUT_MS, () => 'gen-a1 not cordoned');
    await ops.locator('button[data-node="gen-a1"].state-cordoned').waitFor({ timeout: UI_TIMEOUT_MS });
    await ops.getByRole('status').filter({ hasText: 'Node gen-a1 is cordoned' }).waitFor({ timeout: UI_TIMEOUT_MS });
    await ops.getByRole('button', { name: 'Uncordon' }).click();
    await waitUntil(async () => ((await s.operator.request<NodeView>('GET', '/v1/nodes/gen-a1')).body.cordoned ? undefined : true), UI_TIMEOUT_MS, () => 'gen-a1 still cordoned');
    await ops.locator('button[data-node="gen-a1"].state-ready').waitFor({ timeout: UI_TIMEOUT_MS });
    await ops.locator('button[data-node="gpu-1"]').click();
    await ops.locator('#node-title', { hasText: 'gpu-1' }).waitFor();
    expect(await unlabelled(ops)).toEqual([]);
    await screenshot(ops, 'nodes');
  });

  test('an operator removes a down node from the node grid', async () => {
    const spare = await startAgent(nats.url, 'spare', [testNode('spare-1', 'general', { rack: 's' })], 'virtual');
    await waitForNodes(s.operator, ['spare-1']);
    await spare.stop();
    await waitUntil(async () => ((await s.operator.request<NodeView>('GET', '/v1/nodes/spare-1')).body.state === 'down' ? true : undefined), UI_TIMEOUT_MS, () => 'spare-1 never went down');
    await open(ops, 'nodes');
    await ops.locator('button[data-node="spare-1"].state-down').click();
    // Only a down node offers it.
    await ops.locator('#node-title', { hasText: 'spare-1' }).waitFor();
    await ops.getByRole('button', { name: 'Remove', exact: true }).click();
    const dialog = ops.getByRole('dialog', { name: 'Remove spare-1?' });
    await dialog.getByRole('button', { name: 'Remove', exact: true }).click();
    await waitUntil(async () => ((await s.operator.request('GET', '/v1/nodes/spare-1')).status === 404 ? true : undefined), UI_TIMEOUT_MS, () => 'spare-1 still listed');
    await ops.locator('button[data-node="spare-1"]').waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
    await ops.locator('button[data-node="gen-a1"]').click();
    await ops.locator('#node-title', { hasText: 'gen-a1' }).waitFor();
    expect(await ops.getByRole('button', { name: 'Remove', exact: true }).count()).toBe(0);
  });

  test("an operator edits a tenant's quotas", async () => {
    await open(ops, 'tenants');
    const card = ops.locator('article[data-tenant="city-b"]');
    await card.getByRole('button', { name: 'Edit quotas' }).click();
    const general = card.getByRole('group', { name: 'General' });
    await general.getByLabel('Cores').fill('12');
    await general.getByLabel('Waiting jobs').fill('50');
    await card.getByRole('button', { name: 'Save quotas' }).click();
    await card.getByRole('status').filter({ hasText: 'Quotas saved.' }).waitFor({ timeout: UI_TIMEOUT_MS });
    const tenant = await s.operator.request<{ pools: { pool: string; quota: Record<string, number> }[] }>('GET', '/v1/tenants/city-b');
    expect(tenant.body.pools.find((p) => p.pool === 'general')?.quota).toEqual({ cpuMillis: 12_000, pendingJobs: 50 });
    await card.getByText('/ 12', { exact: false }).first().waitFor({ timeout: UI_TIMEOUT_MS });
  });

  test('charts on the overview come from a real Prometheus, through the scheduler', async () => {
    await waitUntil(async () => ((await prom.query('pool:qy_cpu_utilisation:ratio')).result.length > 0 ? true : undefined), 60_000, () => 'Prometheus has no pool:qy_cpu_utilisation:ratio yet');
    const proxied = ops.waitForResponse((res) => res.url().includes('/v1/series/pool%3Aqy_cpu_utilisation%3Aratio') && res.status() === 200, { timeout: UI_TIMEOUT_MS });
    await open(ops, 'overview');
    await proxied;
    const chart = ops.locator('figure.chart[data-source="prometheus"]', { hasText: 'CPU allocated' });
    await waitUntil(async () => (Number(await chart.getAttribute('data-points')) > 0 ? true : undefined), UI_TIMEOUT_MS, () => 'the CPU chart drew no points');
    // uPlot draws in an effect that Preact runs after the next frame, so the points are counted before the
    // canvas exists; wait for it rather than look once.
    await chart.locator('canvas').first().waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await chart.locator('canvas').count()).toBe(1);
    expect(await chart.locator('[role="img"]').getAttribute('aria-label')).toMatch(/^CPU allocated: General \d+%/);
    await screenshot(ops, 'overview');
  });

  test("a tenant downloads its month's bill as CSV", async () => {
    await waitUntil(async () => {
      const bill = await s.api.request<{ lines: unknown[] }>('GET', `/v1/bills/city-a/${period()}`);
      return bill.body.lines.length > 0 ? true : undefined;
    }, UI_TIMEOUT_MS, () => 'city-a has no metered use yet');
    const tenant = await signedInPage(s.tokens['city-a']);
    await open(tenant, 'usage');
    const button = tenant.getByRole('button', { name: 'Download CSV' });
    await tenant.locator('table.bill').waitFor({ timeout: UI_TIMEOUT_MS });
    const [download] = await Promise.all([tenant.waitForEvent('download'), button.click()]);
    expect(download.suggestedFilename()).toBe(`bill-city-a-${period()}.csv`);
    const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^tenant,period,currency,pool,item,/);
    expect(csv.length).toBeGreaterThan(1);
    expect(csv.slice(1).every((line) => line.startsWith(`city-a,${period()},CNY,`))).toBe(true);
    await tenant.getByRole('status').filter({ hasText: 'downloaded' }).waitFor({ timeout: UI_TIMEOUT_MS });
    await tenant.close();
  });

  test('Chinese and English, switchable; the choice is remembered', async () => {
    const tenant = await signedInPage(s.tokens['city-a']);
    await tenant.getByLabel('Language').selectOption('zh');
    await tenant.getByRole('navigation').getByRole('link', { name: '作业' }).waitFor();
    expect(await tenant.evaluate('[document.documentElement.lang, localStorage.getItem("qy-lang")]')).toEqual(['zh-CN', 'zh']);
    await open(tenant, 'overview');
    await tenant.getByRole('heading', { name: '总览' }).waitFor();
    await screenshot(tenant, 'overview-zh');
    await tenant.getByLabel('语言').selectOption('en');
    await tenant.getByRole('navigation').getByRole('link', { name: 'Jobs' }).waitFor();
    await tenant.close();
  });

  test('keyboard: Tab reaches the navigation and Enter opens a page with its heading focused', async () => {
    await open(ops, 'overview');
    await ops.locator('body').focus();
    let focused = '';
    for (let i = 0; i < 20 && focused !== 'Jobs'; i++) {
      await ops.keyboard.press('Tab');
      focused = await ops.evaluate<string>("document.activeElement?.closest('nav') ? document.activeElement.textContent : ''");
    }
    expect(focused).toBe('Jobs');
    await ops.keyboard.press('Enter');
    await ops.locator('.page[data-ready="true"] h1', { hasText: 'Jobs' }).waitFor();
    expect(await ops.evaluate('[location.hash, document.activeElement?.tagName, document.activeElement?.textContent]')).toEqual(['#/jobs', 'H1', 'Jobs']);
  });

  test('every page, with a screenshot', async () => {
    const gang = (await s.operator.request<{ items: { id: string; name?: string }[] }>('GET', '/v1/jobs?tenant=city-b&limit=1000')).body.items.find((j) => j.name === 'big-gang')!;
    const pages: [string, string, string][] = [
      ['job', `jobs/${gang.id}`, 'Why it waits'],
      ['tenants', 'tenants', 'City A Data Bureau'],
      ['usage', 'usage', 'Bill of'],
      ['disclosure', 'disclosure', 'Use by tenant and pool'],
      ['green', 'green', 'How wrong the forecast has been'],
      ['audit', 'audit', 'The chain is intact'],
    ];
    for (const [name, path, text] of pages) {
      await open(ops, path);
      await ops.getByText(text).first().waitFor({ timeout: UI_TIMEOUT_MS });
      expect(await unlabelled(ops), name).toEqual([]);
      await screenshot(ops, name);
    }
    // The audit page shows the operator's cordon from above, and the verification result.
    await ops.locator('td', { hasText: 'node.cordon' }).first().waitFor();
    expect(await ops.locator('[data-chain="ok"]').count()).toBe(1);
  }, 180_000);

  test('no page raised a JavaScript error', () => {
    expect(pageErrors).toEqual([]);
  });
});
