import { readFileSync } from 'node:fs';
import ts from 'typescript';
import type { z } from 'zod';
import { cell, table } from './markdown';

/** A setting's doc comment, split into its meaning and the default it names (for defaults computed at start-up). */
interface EnvDoc {
  meaning: string;
  defaultText?: string;
}

/**
 * The doc comments of a schema's settings, by environment variable: every `/** … Env: QY_X (default: …) *\/`
 * in front of a property of the files' object literals. Earlier files win (a schema's own file, then shared ones).
 */
export function envDocs(files: string[]): Map<string, EnvDoc> {
  const docs = new Map<string, EnvDoc>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAssignment(node)) {
        for (const range of ts.getLeadingCommentRanges(text, node.getFullStart()) ?? []) {
          const raw = text.slice(range.pos, range.end);
          if (!raw.startsWith('/**')) continue;
          const comment = raw
            .replace(/^\/\*\*|\*\/$/g, '')
            .split('\n')
            .map((l) => l.replace(/^\s*\*\s?/, '').trim())
            .join(' ')
            .trim();
          const m = /^(.*?)\s*Env: (QY_[A-Z0-9_]+)(?:\s*\(default:? (.*)\))?\s*$/.exec(comment);
          if (m && !docs.has(m[2])) docs.set(m[2], { meaning: m[1], defaultText: m[3] });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return docs;
}

/** A default as the table shows it: the value in code font, "—" for none, "empty" for the empty string. */
function formatDefault(value: unknown): string {
  if (value === undefined) return '—';
  if (value === '') return 'empty';
  return `\`${typeof value === 'object' ? JSON.stringify(value) : String(value)}\``;
}

/**
 * The configuration table of one schema: a row per setting in the schema's order, with its variable, its
 * default (what the schema gives when the variable is unset, or the comment's "(default: …)" for one
 * computed at start-up, such as the host name) and the meaning from its doc comment.
 */
export function envTable(schema: z.ZodObject, envNames: Record<string, string>, commentFiles: string[]): string {
  const docs = envDocs(commentFiles);
  // The schema's own settings first, then those it shares with others (NATS credentials), each in schema order.
  const own = new Set([...envDocs(commentFiles.slice(0, 1)).keys()]);
  const keys = Object.keys(schema.shape);
  const ordered = [...keys.filter((k) => own.has(envNames[k])), ...keys.filter((k) => !own.has(envNames[k]))];
  const rows = ordered.map((key) => {
    const name = envNames[key];
    if (!name) throw new Error(`setting ${key} has no environment variable`);
    const doc = docs.get(name);
    if (!doc) throw new Error(`${name} has no doc comment with "Env: ${name}" in ${commentFiles.join(', ')}`);
    const parsed = (schema.shape[key] as z.ZodType).safeParse(undefined);
    const defaultCell = doc.defaultText ?? (parsed.success ? formatDefault(parsed.data) : '— (required)');
    return [`\`${name}\``, defaultCell, cell(doc.meaning)];
  });
  return table(['variable', 'default', 'meaning'], rows);
}
