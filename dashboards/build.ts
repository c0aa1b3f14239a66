/**
 * Writes the Grafana dashboards of definitions.ts as JSON (`npm run dashboards`). Datasources are template
 * variables (DS_PROMETHEUS, DS_INFLUXDB), so the same JSON works provisioned or imported.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARDS, type DashboardDef, type PanelDef } from './definitions';

const PROMETHEUS = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
const INFLUXDB = { type: 'influxdb', uid: '${DS_INFLUXDB}' };

function panelJson(p: PanelDef, id: number, x: number, y: number) {
  const usesInflux = p.queries.some((q) => q.influx);
  return {
    id,
    type: p.type,
    title: p.title,
    description: p.description,
    datasource: usesInflux ? INFLUXDB : PROMETHEUS,
    gridPos: { x, y, w: p.w ?? 12, h: p.h ?? 8 },
    fieldConfig: { defaults: { unit: p.unit, ...(p.min !== undefined ? { min: p.min } : {}), ...(p.max !== undefined ? { max: p.max } : {}) }, overrides: [] },
    options: p.type === 'timeseries' ? { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi' } } : { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } },
    targets: p.queries.map((q, i) =>
      q.influx
        ? { refId: String.fromCharCode(65 + i), datasource: INFLUXDB, query: q.expr, rawQuery: true, resultFormat: 'time_series', alias: q.legend ?? '' }
        : { refId: String.fromCharCode(65 + i), datasource: PROMETHEUS, expr: q.expr, legendFormat: q.legend ?? '', range: true },
    ),
  };
}

/** The Grafana JSON of one dashboard. */
export function dashboardJson(d: DashboardDef) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels = d.panels.map((p, i) => {
    const w = p.w ?? 12;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const json = panelJson(p, i + 1, x, y);
    x += w;
    rowHeight = Math.max(rowHeight, p.h ?? 8);
    return json;
  });
  const datasourceVars = [
    { type: 'datasource', name: 'DS_PROMETHEUS', label: 'Prometheus', query: 'prometheus', hide: 0, current: {}, options: [], refresh: 1, regex: '' },
    ...(d.panels.some((p) => p.queries.some((q) => q.influx)) ? [{ type: 'datasource', name: 'DS_INFLUXDB', label: 'InfluxDB', query: 'influxdb', hide: 0, current: {}, options: [], refresh: 1, regex: '' }] : []),
  ];
  const queryVars = d.variables.map((v) => ({
    type: 'query',
    name: v.name,
    label: v.label,
    datasource: PROMETHEUS,
    query: { query: v.query, refId: `${v.name}-var` },
    definition: v.query,
    refresh: 2,
    multi: v.multi,
    includeAll: v.multi,
    ...(v.multi ? { allValue: '.*', current: { text: 'All', value: '$__all' } } : { current: {} }),
    sort: 1,
    hide: 0,
    options: [],
  }));
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['qingyang'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    graphTooltip: 1,
    templating: { list: [...datasourceVars, ...queryVars] },
    annotations: { list: [] },
    panels,
  };
}

if (process.argv[1]?.endsWith('build.ts')) {
  for (const d of DASHBOARDS) writeFileSync(join('dashboards', d.file), `${JSON.stringify(dashboardJson(d), null, 2)}\n`);
  console.log(`wrote ${DASHBOARDS.map((d) => d.file).join(', ')}`);
}
