import { stringify } from 'csv-stringify/sync';

/**
 * CSV as RFC 4180 wants it, for the CSV documents of the API (bills) and of `qy` (job history): one writer,
 * so quoting is the same everywhere. A field is quoted when it holds a comma, a quote or a line break (quotes
 * doubled); null and undefined are empty, booleans `true`/`false`; lines end with CRLF.
 */
export function csvRows(rows: readonly (readonly (string | number | boolean | null | undefined)[])[]): string {
  return stringify(rows as unknown[][], { record_delimiter: 'windows', quoted_match: /[\r\n]/, cast: { boolean: (value) => String(value) } });
}
