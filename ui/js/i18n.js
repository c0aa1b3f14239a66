// The console's words in English and Chinese. The language comes from the user's choice (kept in
// localStorage), else the browser's (navigator.languages); `t(key, vars)` fills {name} placeholders.
// It imports only the dictionaries, so test/ui/i18n.test.ts can load it in Node and check that both
// languages have every key the pages use.

import { en } from './lang/en.js';
import { zh } from './lang/zh.js';

export const DICTIONARIES = { en, zh };
/** The languages offered, each named in itself. */
export const LANGS = [
  ['en', 'English'],
  ['zh', '中文'],
];
const LANG_KEY = 'qy-lang';

/** The browser's preferred language among ours: Chinese for any zh-*, else English. */
export function browserLang(languages) {
  for (const l of languages ?? []) {
    const code = String(l).toLowerCase();
    if (code.startsWith('zh')) return 'zh';
    if (code.startsWith('en')) return 'en';
  }
  return 'en';
}

let current = 'en';
if (typeof window !== 'undefined') {
  const chosen = window.localStorage?.getItem(LANG_KEY);
  current = chosen && DICTIONARIES[chosen] ? chosen : browserLang(navigator.languages?.length ? navigator.languages : [navigator.language]);
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}

export function lang() {
  return current;
}

/** Switches the language and remembers the choice in this browser. */
export function setLang(code) {
  if (!DICTIONARIES[code]) return;
  current = code;
  window.localStorage?.setItem(LANG_KEY, code);
  document.documentElement.lang = code === 'zh' ? 'zh-CN' : 'en';
}

/** The text of `key` in the current language (English, then the key itself, when missing), with {name} filled in. */
export function t(key, vars) {
  const text = DICTIONARIES[current][key] ?? en[key] ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (m, name) => (vars[name] === undefined ? m : String(vars[name]))) : text;
}

/** `t(key)` when the dictionary has it, else `fallback` (names that come from configuration, such as price bands). */
export function tOr(key, fallback) {
  return DICTIONARIES[current][key] ?? en[key] ?? fallback;
}
