import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
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
