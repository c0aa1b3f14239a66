/** Renders rows as an aligned text table with a header, like kubectl's default output. */
export function renderTable(columns: string[], rows: (string | number | undefined)[][]): string {
  const cells = [columns, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]))).join('  ')).join('\n');
}

/** Bytes as GiB/MiB for tables. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${Math.round((bytes / 1024 ** 3) * 10) / 10}Gi`;
  return `${Math.round(bytes / 1024 ** 2)}Mi`;
}

/** Milli-cores as cores. */
export function formatCores(cpuMillis: number): string {
  return cpuMillis % 1000 === 0 ? String(cpuMillis / 1000) : `${cpuMillis}m`;
}
