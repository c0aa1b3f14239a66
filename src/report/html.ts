/**
 * Self-contained HTML reports (inline CSS and SVG, no scripts, nothing fetched), shared by the load-test
 * runner and the simulator: a report can be attached to a ticket or opened from an archive years later.
 */

/** One line of a chart. */
export interface ChartLine {
  name: string;
  color: string;
  values: number[];
  /** Drawn dashed, to stay visible where another line covers it. */
  dashed?: boolean;
}

/** A line chart: one value per x position, x labelled by `xLabel`. */
export interface LineChart {
  title: string;
  unit: string;
  lines: ChartLine[];
  /** The label of the i-th x position (a few are shown). */
  xLabel(i: number): string;
  /** Fixed top of the y axis (e.g. 1 for shares); a round number above the largest value otherwise. */
  maxY?: number;
}

/** Colours for up to eight series, distinguishable in print and for most colour-blind readers. */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The smallest 1, 2 or 5 × 10^k that is at least `v`: a round top for an axis. */
export function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((step) => step >= v) ?? 10 * magnitude;
}

/** An SVG line chart with a y grid of five lines and a legend. */
export function lineChart(chart: LineChart): string {
  const { title, unit, lines } = chart;
  const [width, height, left, right, top, bottom] = [760, 270, 60, 16, 40, 34];
  const n = Math.max(2, ...lines.map((l) => l.values.length));
  const maxY = chart.maxY ?? niceCeil(Math.max(0, ...lines.flatMap((l) => l.values)));
  const x = (i: number) => (left + (i / (n - 1)) * (width - left - right)).toFixed(1);
  const y = (v: number) => (top + (1 - Math.min(v, maxY) / maxY) * (height - top - bottom)).toFixed(1);
  const grid = [0, 1, 2, 3, 4].map((k) => {
    const v = (maxY * k) / 4;
    return `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${left - 6}" y="${y(v)}" class="ylabel">${+v.toPrecision(3)}</text>`;
  });
  const step = Math.max(1, Math.ceil(n / 10));
  const xLabels = Array.from({ length: Math.ceil(n / step) }, (_, k) => `<text x="${x(k * step)}" y="${height - bottom + 16}" class="xlabel">${escapeHtml(chart.xLabel(k * step))}</text>`);
  const paths = lines.map((l) => `<path d="${l.values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i)},${y(v)}`).join('')}" style="stroke:${l.color}" class="line${l.dashed ? ' dashed' : ''}"/>`);
  const legend = lines.map((l, i) => `<text x="${width - right - (lines.length - i) * 110}" y="16" style="fill:${l.color}" class="legend">■ ${escapeHtml(l.name)}</text>`);
  return [
    `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">`,
    `<text x="${left}" y="16" class="title">${escapeHtml(title)} (${escapeHtml(unit)})</text>`,
    ...grid,
    ...xLabels,
    ...paths,
    ...legend,
    '</svg>',
  ].join('\n');
}

/** An HTML table; the first column is left-aligned, the others right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = (tag: string, row: (string | number)[]) => `<tr>${row.map((c) => `<${tag}>${escapeHtml(String(c))}</${tag}>`).join('')}</tr>`;
  return `<table>${cells('th', head)}${rows.map((r) => cells('td', r)).join('')}</table>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:820px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}.note{color:#555}
svg .grid{stroke:#e3e3e3}svg .line{fill:none;stroke-width:1.6}svg .dashed{stroke-dasharray:5 4}svg text{font:11px system-ui,sans-serif;fill:#555}
svg .ylabel{text-anchor:end;dominant-baseline:middle}svg .xlabel{text-anchor:middle}svg .title{font-weight:bold;fill:#222}svg .legend{font-weight:bold}`;

/** A whole page around already-rendered body HTML. */
export function page(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>\n<body>\n${body}\n</body></html>\n`;
}
