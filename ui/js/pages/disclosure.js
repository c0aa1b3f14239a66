// The public disclosure report (operators): how the public compute was used in a period, rendered as a page.
import { useState } from 'preact/hooks';
import { api, download } from '../api.js';
import { amount, currentPeriod, num, pct } from '../format.js';
import { t } from '../i18n.js';
import { ErrorNote, Input, Page, Stat, html, useData } from '../ui.js';

const gpuHours = (f) => Object.values(f.gpuHours).reduce((a, b) => a + b, 0);
const served = (s) => (s ? Object.entries(s).map(([outcome, n]) => `${t(`state.${outcome}`)} ${num(n)}`).join(' · ') : '–');

export function Disclosure() {
  const [period, setPeriod] = useState(currentPeriod());
  const valid = /^\d{4}-(0[1-9]|1[0-2])$/.test(period);
  const report = useData(() => (valid ? api(`/v1/disclosure/${period}`) : Promise.resolve(undefined)), [period, valid]);
  const r = report.data;
  const markdown = () => download(`/v1/disclosure/${period}?format=md`, `disclosure-${period}.md`);
  return html`<${Page} title=${t('nav.disclosure')} busy=${report.loading} actions=${html`<button type="button" onClick=${markdown} disabled=${!r}>${t('disclosure.markdown')}</button>`}>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label=${t('usage.filters')}>
      <${Input} label=${t('usage.period')} type="month" value=${period} onInput=${setPeriod} required />
    </form>
    <${ErrorNote} error=${report.error} />
    ${r
      ? html`<article class="report">
          <p class="muted">${t('disclosure.intro', { interval: r.interval })}</p>
          <div class="stats">
            <${Stat} label=${t('usage.energy')} value=${`${amount(r.total.kWh)} kWh`} />
            <${Stat} label=${t('usage.greenShare')} value=${pct(r.total.greenShare)} tone="green" />
            <${Stat} label=${t('usage.carbon')} value=${`${amount(r.total.carbonKg)} kg`} />
            <${Stat} label=${t('usage.coreHours')} value=${amount(r.total.coreHours)} />
            <${Stat} label=${t('usage.gpuHours')} value=${amount(gpuHours(r.total))} />
            <${Stat} label=${t('disclosure.jobsServed')} value=${num(Object.values(r.jobsServed ?? {}).reduce((a, b) => a + b, 0))} hint=${served(r.jobsServed)} />
          </div>
          <h2>${t('disclosure.pools')}</h2>
          <div class="table-wrap"><table>
            <thead><tr><th scope="col">${t('jobs.pool')}</th><th scope="col">${t('disclosure.services')}</th><th scope="col">${t('disclosure.capacity')}</th><th scope="col">${t('disclosure.offered')}</th><th scope="col">${t('disclosure.used')}</th><th scope="col">${t('disclosure.utilisation')}</th><th scope="col">${t('usage.energy')}</th><th scope="col">${t('disclosure.jobsServed')}</th></tr></thead>
            <tbody>${r.pools.map(
              (p) => html`<tr>
                <th scope="row">${t(`pool.${p.pool}`)}</th>
                <td>${t(`services.${p.pool}`)}</td>
                <td>${p.capacity ? t('disclosure.capacityText', { nodes: num(p.capacity.nodes), cores: num(p.capacity.cores), gpus: num(p.capacity.gpus) }) : '–'}${p.capacity?.gpuModels.length ? html`<div class="muted small">${p.capacity.gpuModels.join(', ')}</div>` : null}</td>
                <td>${num(p.offered.coreHours)} ${t('usage.coreHoursShort')}${p.offered.gpuHours ? html`<div>${num(p.offered.gpuHours)} ${t('usage.gpuHoursShort')}</div>` : null}</td>
                <td>${amount(p.usage.coreHours)} ${t('usage.coreHoursShort')}${gpuHours(p.usage) ? html`<div>${amount(gpuHours(p.usage))} ${t('usage.gpuHoursShort')}</div>` : null}</td>
                <td>CPU ${pct(p.utilisation.cpu, 1)}${p.utilisation.gpu !== null ? html`<div>GPU ${pct(p.utilisation.gpu, 1)}</div>` : null}</td>
                <td>${amount(p.usage.kWh)} kWh<div class="muted small">${t('usage.greenShare')} ${pct(p.usage.greenShare)}</div></td>
                <td>${served(p.jobsServed)}</td>
              </tr>`,
            )}</tbody>
          </table></div>
          <h2>${t('disclosure.tenants')}</h2>
          <div class="table-wrap"><table>
            <thead><tr><th scope="col">${t('jobs.tenant')}</th><th scope="col">${t('jobs.pool')}</th><th scope="col">${t('usage.jobs')}</th><th scope="col">${t('usage.coreHours')}</th><th scope="col">${t('usage.gpuHours')}</th><th scope="col">kWh</th><th scope="col">${t('usage.carbonKg')}</th></tr></thead>
            <tbody>${r.tenants.map(
              (x) => html`<tr><th scope="row">${x.tenant}</th><td>${t(`pool.${x.pool}`)}</td><td>${num(x.usage.jobs)}</td><td>${amount(x.usage.coreHours)}</td><td>${amount(gpuHours(x.usage))}</td><td>${amount(x.usage.kWh)}</td><td>${amount(x.usage.carbonKg)}</td></tr>`,
            )}</tbody>
          </table></div>
        </article>`
      : null}
  <//>`;
}
