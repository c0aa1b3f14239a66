// Charts over time with uPlot (loaded as a classic script, window.uPlot): from Prometheus through the
// scheduler's /v1/series proxy (operators), or from values the console sampled itself since the page opened.
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { api, query } from './api.js';
import { lang, t } from './i18n.js';
import { locale } from './format.js';
import { ErrorNote, html, useData } from './ui.js';

/** Line colours, distinguishable for the common colour-vision deficiencies (Okabe–Ito). */
const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

/**
 * A time-series chart: `x` in Unix seconds, `lines` = [{ label, values }] with null for gaps. `data-points`
 * (values drawn) and `data-source` tell tests and readers what it shows; the aria-label gives the latest values.
 */
export function Chart({ title, x, lines, format, height = 180, source, yRange }) {
  const box = useRef();
  const plot = useRef();
  const points = lines.reduce((n, l) => n + l.values.filter((v) => v !== null && v !== undefined).length, 0);
  const latest = lines.map((l) => `${l.label} ${format(lastValue(l.values))}`).join(', ');
  useEffect(() => {
    const uPlot = window.uPlot;
    const el = box.current;
    if (!uPlot || !el || x.length === 0) return undefined;
    const width = () => Math.max(240, el.clientWidth);
    const opts = {
      width: width(),
      height,
      series: [
        { value: (_u, v) => (v === null ? '–' : new Date(v * 1000).toLocaleString(locale())) },
        ...lines.map((l, i) => ({ label: l.label, stroke: COLORS[i % COLORS.length], width: 2, value: (_u, v) => (v === null || v === undefined ? '–' : format(v)) })),
      ],
      axes: [{}, { size: 70, values: (_u, splits) => splits.map((v) => format(v)) }],
      scales: { y: yRange ? { range: (_u, min, max) => yRange(min, max) } : {} },
      cursor: { drag: { x: false, y: false } },
      // 24-hour times on the time axis, as both languages write them.
      fmtDate: (tpl) => uPlot.fmtDate(tpl.replace('{h}:{mm}{aa}', '{HH}:{mm}').replace('{h}{aa}', '{HH}:00').replace(':{ss}{aa}', ':{ss}')),
    };
    plot.current = new uPlot(opts, [x, ...lines.map((l) => l.values)], el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: width(), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [x, lines, height, lang()]);
  return html`<figure class="chart" data-source=${source} data-points=${points}>
    <figcaption>${title}</figcaption>
    ${x.length === 0 ? html`<p class="muted">${t('chart.noData')}</p>` : html`<div ref=${box} role="img" aria-label=${`${title}: ${latest}`}></div>`}
  </figure>`;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

/** A range answer of /v1/series as chart lines on one time axis (Prometheus leaves out steps without data). */
function toLines(range, labelOf) {
  if (!range) return { x: [], lines: [] };
  const startS = Math.floor(Date.parse(range.start) / 1000);
  const endS = Math.floor(Date.parse(range.end) / 1000);
  const x = [];
  for (let s = startS; s <= endS; s += range.stepSeconds) x.push(s);
  const index = new Map(x.map((s, i) => [s, i]));
  const lines = range.result.map((r) => {
    const values = new Array(x.length).fill(null);
    for (const [s, v] of r.points) {
      const i = index.get(Math.round(s));
      if (i !== undefined) values[i] = v;
    }
    return { label: labelOf(r.labels), values };
  });
  lines.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  return { x, lines };
}

/** The default line label: the pool's name, or the label values. */
function defaultLabel(labels) {
  if (labels.pool && labels.outcome) return `${t(`pool.${labels.pool}`)} · ${labels.outcome}`;
  if (labels.pool) return t(`pool.${labels.pool}`);
  const values = Object.values(labels);
  return values.length ? values.join(' · ') : t('chart.cluster');
}

/** A recording rule over the last `minutes`, from Prometheus through the scheduler (operators only). */
export function PromChart({ series, title, format, minutes, labelOf = defaultLabel, yRange }) {
  const res = useData(() => api(`/v1/series/${encodeURIComponent(series)}${query({ minutes })}`), [series, minutes], 30_000);
  const { x, lines } = useMemo(() => toLines(res.data, labelOf), [res.data, lang()]);
  if (res.error) return html`<figure class="chart"><figcaption>${title}</figcaption><${ErrorNote} error=${res.error} /></figure>`;
  if (res.loading) return html`<figure class="chart" data-source="prometheus" data-points="0"><figcaption>${title}</figcaption><p class="muted">${t('common.loading')}</p></figure>`;
  return html`<${Chart} title=${title} x=${x} lines=${lines} format=${format} source="prometheus" yRange=${yRange} />`;
}

/** Charts over time need Prometheus: whether the scheduler has one (operators ask; tenants never get charts from it). */
export function usePrometheus(me) {
  const res = useData(() => (me.kind === 'operator' ? api('/v1/series') : Promise.resolve({ prometheus: false, series: [] })), [me.kind]);
  return { known: !res.loading, available: Boolean(res.data?.prometheus), series: res.data?.series ?? [] };
}

/** Keeps what the console polls, for charts of "since this page opened" when there is no Prometheus. */
export class Samples {
  constructor(max = 720) {
    this.max = max;
    this.x = [];
    this.values = new Map();
  }

  /** Adds one sample: `values` maps each line's label to its value now. */
  add(values, atMs = Date.now()) {
    const n = this.x.length;
    this.x = [...this.x, Math.round(atMs / 1000)].slice(-this.max);
    for (const [label, v] of Object.entries(values)) {
      const old = this.values.get(label) ?? new Array(n).fill(null);
      this.values.set(label, [...old, v].slice(-this.max));
    }
  }

  lines(labels = [...this.values.keys()]) {
    return labels.map((label) => ({ label, values: this.values.get(label) ?? [] }));
  }
}
