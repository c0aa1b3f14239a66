import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../lifecycle';

/**
 * The one way a YAML or JSON file becomes typed data: parse it, validate it with its zod schema, and say in
 * the error which file and which fields are wrong (`configs/tenants.yaml: tenants.0.name: must be …`). The
 * errors are {@link ConfigError}s: the files are configuration an operator fixes.
 */

/** Parses YAML text (JSON when `source` ends in .json) and validates it; an empty document is an empty mapping. */
export function parseDataText<S extends z.ZodType>(text: string, schema: S, source: string): z.output<S> {
  const format = source.endsWith('.json') ? 'JSON' : 'YAML';
  let data: unknown;
  try {
    data = format === 'JSON' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid ${format}: ${(err as Error).message}`, { cause: err });
  }
  return validateData(data ?? {}, schema, source);
}

/** Validates parsed data with `schema`; the error names `source` and each field that is wrong. */
export function validateData<S extends z.ZodType>(data: unknown, schema: S, source: string): z.output<S> {
  const result = schema.safeParse(data);
  if (!result.success) throw new ConfigError(`${source}: ${result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return result.data;
}

/** Reads a YAML or JSON file and validates it with `schema`; errors name the file and each field that is wrong. */
export function loadDataFile<S extends z.ZodType>(path: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return parseDataText(text, schema, path);
}
