// Green: the carbon signal deferral plans against, its forecast, power and green share per pool, the jobs
// held for greener power with their planned starts, and (operators with Prometheus) green share over time.
import { useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Chart, PromChart, usePrometheus } from '../chart.js';
import { dateTime, duration, num, pct, relative, watts } from '../format.js';
import { t } from '../i18n.js';
import { Empty, ErrorNote, Page, Select, Stat, Updated, html, useData } from '../ui.js';

const REFRESH_MS = 15_000;
const gPerKwh = (v) => `${num(v)} g`;
const fromZero = (_min, max) => [0, Math.max(1, max)];
/** Grams per second as g/h, or kg/h from 1 kg. */
const gramsPerHour = (gPerS) => (gPerS * 3600 >= 1000 ? `${num(gPerS * 3.6, 1)} kg/h` : `${num(gPerS * 3600)} g/h`);

function Forecast({ green }) {
  const { x, lines } = useMemo(() => {
    const points = [{ at: green.at, gPerKwh: green.signal.gPerKwh }, ...green.forecast.filter((p) => p.at > green.at)];
    return { x: points.map((p) => Math.round(Date.parse(p.at) / 1000)), lines: [{ label: t('green.signal'), values: points.map((p) => p.gPerKwh) }] };
  }, [green]);
  return html`<${Chart} title=${t('green.forecast')} x=${x} lines=${lines} format=${gPerKwh} source="api" yRange=${fromZero} />`;
}

/** The forecaster's recent error per horizon: where it is not measured yet, deferral does not trust the forecast that far. */
function Errors({ forecaster }) {
  return html`<section aria-labelledby="green-errors">
    <h2 id="green-errors">${t('green.errors')}</h2>
    <p class="muted">${t('green.errorsIntro')}</p>
    <div class="table-wrap"><table>
      <thead><tr><th scope="row">${t('green.ahead')}</th>${forecaster.errors.map((e) => html`<th scope="col">${duration(e.aheadHours * 3_600_000)}</th>`)}</tr></thead>
      <tbody><tr><th scope="row">${t('green.error')}</th>${forecaster.errors.map((e) => html`<td>${e.gPerKwh === null ? html`<span class="muted">${t('green.notMeasured')}</span>` : gPerKwh(e.gPerKwh)}</td>`)}</tr></tbody>
    </table></div>
  </section>`;
}

function History({ me }) {
  const prom = usePrometheus(me);
  const [minutes, setMinutes] = useState('720');
  if (!prom.available) return html`<p class="muted">${me.kind === 'operator' ? t('overview.noPrometheus') : t('overview.tenantCharts')}</p>`;
  const m = Number(minutes);
  return html`<section aria-labelledby="green-history">
    <div class="section-head">
      <h2 id="green-history">${t('green.history')}</h2>
      <${Select} label=${t('overview.range')} value=${minutes} onChange=${setMinutes} options=${[['180', t('range.3h')], ['720', t('range.12h')], ['1440', t('range.24h')]]} />
    </div>
    <div class="chart-grid">
      <${PromChart} series="pool:qy_green_power_share:ratio_5m" title=${t('green.shareByPool')} format=${(v) => pct(v)} minutes=${m} yRange=${fromZero} />
      <${PromChart} series="cluster:qy_carbon_grams:rate5m" title=${t('green.carbonRate')} format=${gramsPerHour} minutes=${m} labelOf=${() => t('chart.cluster')} />
    </div>
  </section>`;
}

export function Green({ me }) {
  const green = useData(() => api('/v1/green?hours=24'), [], REFRESH_MS);
  const g = green.data;
  const power = (g?.pools ?? []).reduce((s, p) => s + p.powerWatts, 0);
  const greenPower = (g?.pools ?? []).reduce((s, p) => s + p.greenWatts, 0);
  const nowMs = Date.now();
  return html`<${Page} title=${t('nav.green')} busy=${green.loading}>
    <${ErrorNote} error=${green.error} />
    ${g
      ? html`<div class="stats">
            <${Stat} label=${t('green.signalNow')} value=${`${num(g.signal.gPerKwh)} g/kWh`} hint=${t(`green.source.${g.signal.source}`)} />
            <${Stat} label=${t('green.grid')} value=${`${num(g.signal.gridGPerKwh)} g/kWh`} />
            <${Stat} label=${t('green.level')} value=${g.forecaster.levelGPerKwh === undefined ? '–' : `${num(g.forecaster.levelGPerKwh)} g/kWh`} hint=${t('green.levelHint')} />
            <${Stat} label=${t('overview.power')} value=${watts(power)} />
            <${Stat} label=${t('overview.greenShare')} value=${power > 0 ? pct(greenPower / power) : '–'} tone="green" />
            <${Stat} label=${t('green.deferral')} value=${g.deferral.enabled ? t('green.on') : t('green.off')} hint=${t('green.step', { d: duration(g.deferral.stepMs) })} />
            <${Stat} label=${t('green.deferredCount')} value=${num(g.deferred.length)} />
            <${Stat} label=${t('green.forecaster')} value=${g.forecaster.name} hint=${g.forecaster.observedSince ? t('green.learningSince', { d: dateTime(g.forecaster.observedSince) }) : undefined} />
          </div>
          <${Updated} at=${green.at} everySeconds=${REFRESH_MS / 1000} />
          <${Forecast} green=${g} />
          <${Errors} forecaster=${g.forecaster} />
          <section aria-labelledby="green-pools">
            <h2 id="green-pools">${t('green.pools')}</h2>
            <div class="table-wrap"><table>
              <thead><tr><th scope="col">${t('jobs.pool')}</th><th scope="col">${t('green.nodesReporting')}</th><th scope="col">${t('overview.power')}</th><th scope="col">${t('green.greenPower')}</th><th scope="col">${t('overview.greenShare')}</th><th scope="col">${t('green.deferralShare')}</th></tr></thead>
              <tbody>${g.pools.map((p) => html`<tr><th scope="row">${t(`pool.${p.pool}`)}</th><td>${num(p.nodes)}</td><td>${watts(p.powerWatts)}</td><td>${watts(p.greenWatts)}</td><td>${p.powerWatts > 0 ? pct(p.greenWatts / p.powerWatts) : '–'}</td><td>${pct(p.deferralShare)}</td></tr>`)}</tbody>
            </table></div>
          </section>
          <section aria-labelledby="green-deferred">
            <h2 id="green-deferred">${t('green.deferred')}</h2>
            <p class="muted">${t('green.deferredIntro')}</p>
            ${g.deferred.length === 0
              ? html`<${Empty} text=${t('green.noneDeferred')} />`
              : html`<div class="table-wrap"><table>
                  <thead><tr><th scope="col">${t('jobs.job')}</th>${me.kind === 'operator' ? html`<th scope="col">${t('jobs.tenant')}</th>` : null}<th scope="col">${t('jobs.pool')}</th><th scope="col">${t('green.plannedStart')}</th><th scope="col">${t('green.why')}</th></tr></thead>
                  <tbody>${g.deferred.map(
                    (d) => html`<tr><td><a href=${`#/jobs/${d.id}`}>${d.name ?? d.id}</a></td>${me.kind === 'operator' ? html`<td>${d.tenant}</td>` : null}<td>${t(`pool.${d.pool}`)}</td><td>${dateTime(d.plannedStartAt)} <span class="muted small">(${relative(d.plannedStartAt, nowMs)})</span></td><td class="small">${d.reason}</td></tr>`,
                  )}</tbody>
                </table></div>`}
          </section>
          <${History} me=${me} />`
      : null}
  <//>`;
}
