import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, test } from 'vitest';

/**
 * The layers of the tree, checked on every import of every source file. Dependencies point inward: the
 * service (scheduler/), the agent (agents/), the CLI (cli/) and the tools (harness/, loadtests/, bench/,
 * scripts/) stand on src/; src/ holds only what production runs and imports none of them; src/core and
 * src/protocol stand on nothing above them. See "Layers" in the README.
 */

const ROOTS = ['src', 'scheduler', 'agents', 'cli', 'harness', 'loadtests', 'bench', 'chaos', 'scripts', 'dashboards', 'test'];

/** What each part may import from the project (npm packages and node: builtins are always allowed). */
const RULES: { part: string; may: string[]; why: string }[] = [
  { part: 'src/protocol/', may: ['src/protocol/'], why: 'the wire shapes stand on nothing' },
  { part: 'src/core/', may: ['src/core/', 'src/protocol/'], why: 'the placement core is pure: its only outside is the protocol' },
  { part: 'src/client/', may: ['src/client/', 'src/protocol/'], why: 'the API client knows the wire, nothing of the service' },
  { part: 'cli/', may: ['cli/', 'src/client/', 'src/protocol/'], why: 'qy is a client of the API, not a part of the service' },
  { part: 'src/', may: ['src/'], why: 'src/ is what production runs: no service, agent, CLI, harness or tool' },
  { part: 'scheduler/', may: ['scheduler/', 'src/'], why: 'the service stands on src/' },
  { part: 'agents/', may: ['agents/', 'src/'], why: 'the agent stands on src/' },
];

/** Production code that must not import the simulator: "sim" is the simulator only. */
const NOT_THE_SIMULATOR = { importers: ['src/', 'scheduler/', 'agents/', 'cli/'], target: 'src/sim/', except: ['src/sim/'] };

/**
 * Imports that break a rule today and are kept on purpose until their owner's change lands. The test fails
 * when one of them disappears, so the list cannot go stale.
 */
const KNOWN_LEAKS = new Map([
  // The agent's virtual nodes are the simulator's synthetic mixed cluster; the agent rewrite moves that catalogue out of src/sim.
  ['agents/node-spec.ts -> src/sim/synthetic.ts', 'agent rewrite'],
]);

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'fixtures' ? [] : sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Module specifiers of a file: static imports and re-exports, side-effect imports and dynamic imports of literals. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;'"]*?\sfrom\s*['"]([^'"]+)['"]/gm)) found.push(m[1]);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) found.push(m[1]);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]);
  return found;
}

/** The project file a relative specifier names (as tsx and the bundler resolution find it); undefined for packages. */
function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = normalize(join(dirname(from), specifier));
  const candidates = [base, `${base}.ts`, base.replace(/\.js$/, '.ts'), join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? base;
}

// This file is left out: its last test feeds the parser made-up imports.
const edges = ROOTS.flatMap(sourceFiles)
  .filter((file) => file !== join('test', 'layers.test.ts'))
  .flatMap((file) =>
  specifiers(readFileSync(file, 'utf8')).flatMap((s) => {
    const target = resolve(file, s);
    return target ? [{ from: relative('.', file), to: relative('.', target) }] : [];
  }),
);

const ruleOf = (file: string) => RULES.find((r) => file.startsWith(r.part));

describe('layers', () => {
  test('the walk sees the tree: thousands of imports, every relative one resolves to a file', () => {
    expect(edges.length).toBeGreaterThan(1000);
    expect(edges.filter((e) => !existsSync(e.to)).map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  test('every import keeps to its layer', () => {
    const violations = edges
      .filter((e) => {
        const rule = ruleOf(e.from);
        return rule !== undefined && !rule.may.some((p) => e.to.startsWith(p)) && !KNOWN_LEAKS.has(`${e.from} -> ${e.to}`);
      })
      .map((e) => `${e.from} -> ${e.to} (${ruleOf(e.from)!.why})`);
    expect(violations).toEqual([]);
  });

  test('production code does not import the simulator', () => {
    const { importers, target, except } = NOT_THE_SIMULATOR;
    const violations = edges
      .filter((e) => importers.some((p) => e.from.startsWith(p)) && !except.some((p) => e.from.startsWith(p)) && e.to.startsWith(target))
      .map((e) => `${e.from} -> ${e.to}`)
      .filter((edge) => !KNOWN_LEAKS.has(edge));
    expect(violations).toEqual([]);
  });

  test('every known leak still exists (remove it from the list once its fix lands)', () => {
    const present = new Set(edges.map((e) => `${e.from} -> ${e.to}`));
    expect([...KNOWN_LEAKS.keys()].filter((leak) => !present.has(leak))).toEqual([]);
  });

  test('the rules catch a leak when there is one', () => {
    const leak = { from: 'src/core/placement.ts', to: 'scheduler/service.ts' };
    expect(ruleOf(leak.from)?.may.some((p) => leak.to.startsWith(p))).toBe(false);
    expect(specifiers("import { a } from '../x';\nexport * from './y';\nimport './z';\nconst m = await import('../w');\nimport type {\n  B,\n} from '../v';")).toEqual(['../x', './y', '../v', './z', '../w']);
  });
});
