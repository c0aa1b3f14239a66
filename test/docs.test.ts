import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { AGENT_ENV } from '../agents/config';
import { SCHEDULER_ENV } from '../scheduler/config';
import { KUBE_ENV } from '../src/kube/config';

const readme = readFileSync('README.md', 'utf8');

test('every configuration variable is documented in the README', () => {
  const missing = [...Object.values(SCHEDULER_ENV), ...Object.values(AGENT_ENV), ...Object.values(KUBE_ENV)].filter((name) => !readme.includes(`\`${name}\``));
  expect(missing).toEqual([]);
});

test('the README quick start has exactly the two commands that CI runs', () => {
  const quickStart = readme.split('## Quick start')[1].split('##')[0];
  const commands = quickStart.split('```sh')[1].split('```')[0].trim().split('\n').map((l) => l.split('#')[0].trim());
  expect(commands).toEqual(['npm start', 'npm test']);
  expect(readFileSync('.ci/run', 'utf8')).toMatch(/^npm test$/m);
});

test('the example tenants file is valid', async () => {
  const { loadTenantsFile } = await import('../scheduler/tenants');
  const file = loadTenantsFile('configs/tenants.example.yaml');
  expect(file.tenants.map((t) => t.name)).toEqual(['beijing', 'shanghai-meteo']);
});

test('the dashboards JSON is what dashboards/definitions.ts builds (npm run dashboards)', async () => {
  const { DASHBOARDS } = await import('../dashboards/definitions');
  const { dashboardJson } = await import('../dashboards/build');
  for (const d of DASHBOARDS) expect(JSON.parse(readFileSync(`dashboards/${d.file}`, 'utf8')), d.file).toEqual(dashboardJson(d));
});

test('every dashboard panel has a description and a unit, and datasources are variables', async () => {
  for (const file of ['cluster-overview.json', 'green-power.json', 'tenants.json', 'node.json']) {
    const d = JSON.parse(readFileSync(`dashboards/${file}`, 'utf8')) as { panels: { description: string; fieldConfig: { defaults: { unit: string } }; datasource: { uid: string } }[] };
    for (const p of d.panels) {
      expect(p.description.length).toBeGreaterThan(10);
      expect(p.fieldConfig.defaults.unit).toBeTruthy();
      expect(p.datasource.uid).toMatch(/^\$\{DS_(PROMETHEUS|INFLUXDB)\}$/);
    }
  }
});

describe('generated tables (npm run docs:gen)', () => {
  test('the README holds exactly what npm run docs:gen writes: configuration, routes, NATS names, metrics', async () => {
    const { generatedRegions, withRegions } = await import('../scripts/gen-docs');
    const regions = await generatedRegions();
    const stale = Object.entries(regions)
      .filter(([name, content]) => !readme.includes(`<!-- gen:${name} -->\n${content}\n<!-- /gen:${name} -->`))
      .map(([name]) => name);
    expect(stale, 'run npm run docs:gen and commit the README').toEqual([]);
    expect(withRegions(readme, regions)).toBe(readme);
  });

  test('generation is deterministic, and a README without a region’s markers is refused', async () => {
    const { generatedRegions, withRegions } = await import('../scripts/gen-docs');
    expect(await generatedRegions()).toEqual(await generatedRegions());
    expect(() => withRegions('# no markers\n', { env: 'x' })).toThrow(/need exactly one <!-- gen:env -->/);
    expect(withRegions('a\n<!-- gen:x -->\nold\n<!-- /gen:x -->\nb\n', { x: 'new' })).toBe('a\n<!-- gen:x -->\nnew\n<!-- /gen:x -->\nb\n');
  });

  test('every API route has a summary, so it is in the table (only the OpenAPI document and the console files are left out)', async () => {
    const { registeredRoutes } = await import('../scripts/docs/routes');
    const untitled = (await registeredRoutes()).filter((r) => !(r.schema as { summary?: string } | undefined)?.summary && r.method !== 'HEAD').map((r) => r.url);
    expect([...new Set(untitled)].sort()).toEqual(['/docs/json', '/ui/*', '/ui/vendor/:file']);
  });

  test('every subject, stream and bucket of src/protocol/subjects.ts is in NATS_NAMES', async () => {
    const { NATS_NAMES, STREAMS, KV_BUCKETS, OBJECT_STORES, subjects } = await import('../src/protocol');
    // Placeholders stand for any token: `qy.assign.<a>.>` is covered by `qy.assign.<agentId>.<nodeId>`.
    const shape = (s: string) => s.replace(/<[^>]+>/g, '*');
    const names = NATS_NAMES.map((n) => shape(n.name));
    const text = NATS_NAMES.map((n) => `${n.name} ${n.kind}`).join('\n');
    for (const [key, built] of Object.entries(subjects)) {
      const subject = shape(typeof built === 'function' ? (built as (...a: string[]) => string)(...Array.from({ length: built.length }, (_, i) => `<arg${i}>`)) : built);
      const covered = subject.endsWith('.>') ? names.some((n) => n.startsWith(subject.slice(0, -1))) : names.includes(subject);
      expect(covered, `subjects.${key} = ${subject}`).toBe(true);
    }
    for (const name of [...Object.values(STREAMS), ...Object.values(KV_BUCKETS), ...Object.values(OBJECT_STORES)]) expect(text, name).toContain(name);
  });
});
