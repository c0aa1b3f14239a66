import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';

/**
 * Tables from CSV files (green signals, GPU-cluster traces, node lists): read by csv-parse, so quoted fields
 * (RFC 4180: commas, quotes and line breaks inside quotes) read as their text. Cells are trimmed, blank lines
 * skipped, rows may be shorter or longer than the header, and a byte-order mark is dropped.
 */
export interface Table {
  /** The first row. */
  header: string[];
  /** The rows after it. */
  rows: string[][];
}

/**
 * The delimiter of a CSV text, from its header line: a comma, else a semicolon or a tab when the header has
 * one (spreadsheets in many European locales save `;`-separated files, with decimal commas).
 */
function delimiterOf(text: string): ',' | ';' | '\t' {
  const end = text.indexOf('\n');
  const header = end < 0 ? text : text.slice(0, end);
  if (header.includes(',')) return ',';
  if (header.includes(';')) return ';';
  return header.includes('\t') ? '\t' : ',';
}

/** A decimal comma, as a `;`- or tab-separated file may write a number: `212,5`. */
const DECIMAL_COMMA = /^[+-]?\d+,\d+$/;

/**
 * Parses CSV text with a header row; errors name `source`. The delimiter is a comma, or a semicolon or a tab
 * when the header has no comma; in such a file a number with a decimal comma reads as one with a point.
 */
export function parseTable(text: string, source: string): Table {
  const delimiter = delimiterOf(text);
  let records: string[][];
  try {
    records = parse(text, { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, delimiter });
  } catch (err) {
    throw new Error(`${source}: not valid CSV: ${(err as Error).message}`, { cause: err });
  }
  if (delimiter !== ',') for (const record of records) for (let i = 0; i < record.length; i++) if (DECIMAL_COMMA.test(record[i])) record[i] = record[i].replace(',', '.');
  const [header, ...rows] = records;
  if (!header) throw new Error(`${source}: empty file`);
  return { header, rows };
}

/** Reads a CSV file with a header row; see {@link parseTable}. */
export function readTable(path: string): Table {
  return parseTable(readFileSync(path, 'utf8'), path);
}

/** The index of the first of `names` in the header, compared case-insensitively; -1 when none is there. */
export function columnIndex(header: readonly string[], names: readonly string[]): number {
  const lower = header.map((h) => h.toLowerCase());
  for (const name of names) {
    const i = lower.indexOf(name.toLowerCase());
    if (i >= 0) return i;
  }
  return -1;
}
