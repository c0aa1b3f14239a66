// Types of the console's plain JavaScript modules (ui/js) that tests load in Node.
declare module '*/ui/js/i18n.js' {
  export const DICTIONARIES: { en: Record<string, string>; zh: Record<string, string> };
  export const LANGS: [string, string][];
  export function browserLang(languages: readonly string[] | undefined): 'en' | 'zh';
  export function lang(): 'en' | 'zh';
  export function t(key: string, vars?: Record<string, string | number>): string;
}

declare module '*/ui/js/reasons.js' {
  export function explainPending(reason: string | undefined): { text: string; items?: string[] }[];
}
