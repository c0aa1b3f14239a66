import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
// The console's own module: plain JavaScript, no imports beyond its dictionaries, so it loads in Node.
import { DICTIONARIES, browserLang, t } from '../../ui/js/i18n.js';

const JS_DIR = 'ui/js';
const sources = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
const code = sources(JS_DIR)
  .filter((f) => !f.includes(`${join(JS_DIR, 'lang')}`))
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');

describe('the console in English and Chinese', () => {
  test('both languages have the same keys', () => {
    const en = Object.keys(DICTIONARIES.en).sort();
    const zh = Object.keys(DICTIONARIES.zh).sort();
    expect(zh.filter((k) => !en.includes(k))).toEqual([]);
    expect(en.filter((k) => !zh.includes(k))).toEqual([]);
  });

  test('every key the pages use literally is in the dictionaries', () => {
    const used = new Set([...code.matchAll(/\bt\('([^']+)'/g), ...code.matchAll(/key: '([a-z]+\.[a-zA-Z.]+)'/g)].map((m) => m[1]));
    expect(used.size).toBeGreaterThan(150);
    expect([...used].filter((k) => !(k in DICTIONARIES.en))).toEqual([]);
  });

  test('keys built from API values cover every value the API can send', async () => {
    const { JOB_STATES, NODE_STATES, POOLS } = await import('../../src/protocol');
    const { METERED_ITEMS } = await import('../../src/billing');
    const keys = [...JOB_STATES.map((s) => `state.${s}`), ...NODE_STATES.map((s) => `state.${s}`), ...POOLS.flatMap((p) => [`pool.${p}`, `services.${p}`]), ...METERED_ITEMS.map((i) => `item.${i}`)];
    for (const task of ['assigned', 'running', 'succeeded', 'failed', 'cancelled', 'lost']) keys.push(`task.${task}`);
    for (const kind of ['tenant', 'operator', 'anonymous', 'system']) keys.push(`actor.${kind}`);
    for (const outcome of ['ok', 'denied', 'failed']) keys.push(`outcome.${outcome}`);
    expect(keys.filter((k) => !(k in DICTIONARIES.en))).toEqual([]);
  });

  test('placeholders are the same in both languages', () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    const differ = Object.keys(DICTIONARIES.en).filter((k) => JSON.stringify(names(DICTIONARIES.en[k])) !== JSON.stringify(names(DICTIONARIES.zh[k])));
    expect(differ).toEqual([]);
  });

  test.each([
    { languages: ['zh-CN', 'en'], want: 'zh' },
    { languages: ['zh-TW'], want: 'zh' },
    { languages: ['en-GB', 'zh-CN'], want: 'en' },
    { languages: ['fr-FR', 'zh'], want: 'zh' },
    { languages: ['de-DE'], want: 'en' },
    { languages: [], want: 'en' },
  ])('the browser language $languages gives $want', ({ languages, want }) => {
    expect(browserLang(languages)).toBe(want);
  });

  test('placeholders are filled and unknown keys fall back to the key', () => {
    expect(t('overview.nodes', { n: 3 })).toBe('3 nodes');
    expect(t('no.such.key')).toBe('no.such.key');
  });
});
