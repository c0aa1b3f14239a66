/**
 * The web console's weight and speed, against a running scheduler (by default the demo's, `npm start`):
 *
 *   npm run bench:ui                                    # http://127.0.0.1:8080, operator token from .data/demo-tokens.json
 *   npm run bench:ui -- --url http://host:8080 --token qy_… --runs 10
 *
 * Size: every file the console loads (ui/ and the vendor files from node_modules), fetched from the server
 * and gzipped (level 9), summed. Load time: Chromium headless (Debian's, 1280×800) opens each page afresh
 * (a full page load, signed in) and reads when the page first showed its data (the `qy-page-ready`
 * performance mark, from navigation start). The very first load runs with an empty cache (`coldLoadMs`);
 * the others with the browser's cache as a returning user has it. The final line is JSON:
 * {"bundleGzipBytes":…,"bundleBytes":…,"files":…,"coldLoadMs":…,"loadMsP50":…,"loadMsP95":…,"loadMsMax":…,"pages":{…}}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { consoleFiles } from '../scheduler/http/routes/ui';
import { SchedulerClient } from '../src/client';
import { launchChromium } from '../harness/chromium';

const PAGES = ['overview', 'jobs', 'nodes', 'tenants', 'usage', 'disclosure', 'green', 'audit'];
const program = new Command()
  .name('bench:ui')
  .option('--url <url>', 'the scheduler', 'http://127.0.0.1:8080')
  .option('--token <token>', 'an operator token (default: the demo operator in .data/demo-tokens.json)')
  .option('--runs <n>', 'loads of each page', '5')
  .parse();
const opts = program.opts<{ url: string; token?: string; runs: string }>();
const runs = Number(opts.runs);
const token = opts.token ?? (existsSync('.data/demo-tokens.json') ? (JSON.parse(readFileSync('.data/demo-tokens.json', 'utf8')) as { ops: string }).ops : undefined);
if (!token) throw new Error('no token: start the demo (npm start) or pass --token');

// ---- Size: what the server sends, gzipped ----
let bundleBytes = 0;
let bundleGzipBytes = 0;
const files = consoleFiles();
for (const { urlPath } of files) {
  const res = await fetch(`${opts.url}${urlPath}`);
  if (!res.ok) throw new Error(`${urlPath}: ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  bundleBytes += body.length;
  bundleGzipBytes += gzipSync(body, { level: 9 }).length;
}
console.log(`console files: ${files.length}, ${(bundleBytes / 1024).toFixed(1)} KiB, ${(bundleGzipBytes / 1024).toFixed(1)} KiB gzipped`);

// ---- Load time of each page ----
const browser = await launchChromium();
const samples = new Map<string, number[]>();
let coldLoadMs = 0;
try {
  const page = await browser.context.newPage();
  const api = new SchedulerClient({ url: opts.url, token, connections: 1 });
  const jobs = await api.listJobs({ limit: 1 }).finally(() => api.close());
  const paths = [...PAGES, ...(jobs.items[0] ? [`jobs/${jobs.items[0].id}`] : [])];
  // Sign in (the token goes to sessionStorage, which survives the page loads below in this tab).
  await page.goto(`${opts.url}/ui/`);
  await page.getByLabel('API token').fill(token);
  await page.locator('button[type="submit"]').click();
  await page.locator('.page[data-ready="true"]').waitFor({ timeout: 30_000 });
  const load = async (path: string): Promise<number> => {
    await page.goto('about:blank');
    await page.goto(`${opts.url}/ui/#/${path}`);
    await page.locator('.page[data-ready="true"]').waitFor({ timeout: 30_000 });
    return page.evaluate<number>("performance.getEntriesByName('qy-page-ready')[0].startTime");
  };
  for (const path of paths) {
    for (let i = 0; i < runs; i++) {
      const ms = await load(path);
      const key = path.startsWith('jobs/') ? 'job' : path;
      samples.set(key, [...(samples.get(key) ?? []), ms]);
    }
  }
  // Cold: a fresh profile (empty cache) with the token already in the tab, as after signing in elsewhere.
  const cold = await launchChromium();
  try {
    const p = await cold.context.newPage();
    await p.goto(`${opts.url}/ui/`);
    await p.evaluate(`sessionStorage.setItem('qy-token', ${JSON.stringify(token)})`);
    await p.goto('about:blank');
    await p.goto(`${opts.url}/ui/#/overview`);
    await p.locator('.page[data-ready="true"]').waitFor({ timeout: 30_000 });
    coldLoadMs = await p.evaluate<number>("performance.getEntriesByName('qy-page-ready')[0].startTime");
  } finally {
    await cold.close();
  }
} finally {
  await browser.close();
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const all = [...samples.values()].flat();
const round = (x: number) => Math.round(x);
console.log(`\n${'page'.padEnd(12)}${'p50 ms'.padStart(8)}${'max ms'.padStart(8)}`);
for (const [path, xs] of samples) console.log(`${path.padEnd(12)}${String(round(quantile(xs, 0.5))).padStart(8)}${String(round(Math.max(...xs))).padStart(8)}`);
console.log(`\ncold (empty cache, overview): ${round(coldLoadMs)} ms; all pages: p50 ${round(quantile(all, 0.5))} ms, p95 ${round(quantile(all, 0.95))} ms, max ${round(Math.max(...all))} ms`);
console.log(
  JSON.stringify({
    bundleGzipBytes,
    bundleBytes,
    files: files.length,
    coldLoadMs: round(coldLoadMs),
    loadMsP50: round(quantile(all, 0.5)),
    loadMsP95: round(quantile(all, 0.95)),
    loadMsMax: round(Math.max(...all)),
    pages: Object.fromEntries([...samples].map(([path, xs]) => [path, round(quantile(xs, 0.5))])),
  }),
);
