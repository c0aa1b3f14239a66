/**
 * Writes the README's generated tables from their single sources (npm run docs:gen):
 *   gen:env-scheduler, gen:env-agent, gen:env-kube   the zod config schemas, their defaults and doc comments
 *   gen:routes                                        the fastify routes as the scheduler registers them
 *   gen:nats                                          NATS_NAMES in src/protocol (names from subjects.ts)
 *   gen:metrics                                       the prom-client registries behind /metrics
 * Each table sits between `<!-- gen:NAME -->` and `<!-- /gen:NAME -->`; the text around them is the README's
 * own. `--check` writes nothing and exits 1 when the README differs (test/docs.test.ts checks the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AGENT_ENV, agentConfigSchema } from '../agents/config';
import { SCHEDULER_ENV, schedulerConfigSchema } from '../scheduler/config';
import { KUBE_ENV, kubeConfigSchema } from '../src/kube/config';
import { NATS_NAMES } from '../src/protocol';
import { envTable } from './docs/env';
import { cell, table } from './docs/markdown';
import { metricsTable } from './docs/metrics';
import { routeTable } from './docs/routes';

const NATS_AUTH_COMMENTS = 'src/store/nats-options.ts';

/** The generated text of every region, by name. */
export async function generatedRegions(): Promise<Record<string, string>> {
  return {
    'env-scheduler': envTable(schedulerConfigSchema, SCHEDULER_ENV, ['scheduler/config.ts', NATS_AUTH_COMMENTS]),
    'env-agent': envTable(agentConfigSchema, AGENT_ENV, ['agents/config.ts', NATS_AUTH_COMMENTS]),
    'env-kube': envTable(kubeConfigSchema, KUBE_ENV, ['src/kube/config.ts', NATS_AUTH_COMMENTS]),
    routes: await routeTable(),
    nats: table(
      ['name', 'kind', 'from → to', 'what'],
      NATS_NAMES.map((n) => [`\`${n.name}\``, cell(n.kind), cell(n.route), cell(n.what)]),
    ),
    metrics: metricsTable(),
  };
}

/** The README with every region's content replaced; throws when a region's markers are missing or repeated. */
export function withRegions(readme: string, regions: Record<string, string>): string {
  let out = readme;
  for (const [name, content] of Object.entries(regions)) {
    const open = `<!-- gen:${name} -->`;
    const close = `<!-- /gen:${name} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start < 0 || end < start || out.indexOf(open, start + 1) >= 0) throw new Error(`README.md: need exactly one ${open} … ${close}`);
    out = `${out.slice(0, start + open.length)}\n${content}\n${out.slice(end)}`;
  }
  return out;
}

async function main(): Promise<void> {
  const path = 'README.md';
  const current = readFileSync(path, 'utf8');
  const next = withRegions(current, await generatedRegions());
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('README.md differs from what npm run docs:gen writes: run it and commit the result');
      process.exit(1);
    }
    console.log('README.md is up to date');
    return;
  }
  if (next !== current) writeFileSync(path, next);
  console.log(next === current ? 'README.md is up to date' : 'README.md: generated tables rewritten');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
