import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

/**
 * The one way a YAML or JSON file becomes typed data: parse it, validate it with its zod schema, and say in
 * the error which file and which fields are wrong (`configs/tenants.yaml: tenants.0.name: must be …`).
 */

/** Parses YAML text (JSON when `source` ends in .json) and validates it; an empty document is an empty mapping. */
export function parseDataText<S extends z.ZodType>(text: string, schema: S, source: string): z.output<S> {
  const format = source.endsWith('.json') ? 'JSON' : 'YAML';
  let data: unknown;
  try {
    data = format === 'JSON' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new Error(`${source}: not valid ${format}: ${(err as Error).message}`, { cause: err });
  }
  const result = schema.safeParse(data ?? {});
  if (!result.success) throw new Error(`${source}: ${result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return result.data;
}

/** Reads a YAML or JSON file and validates it with `schema`; errors name the file and each field that is wrong. */
export function loadDataFile<S extends z.ZodType>(path: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return parseDataText(text, schema, path);
}
