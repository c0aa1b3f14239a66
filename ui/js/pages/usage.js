// Usage and bills: metered use in a period, the bill's lines and its CSV download.
import { useState } from 'preact/hooks';
import { api, download, query } from '../api.js';
import { amount, currentPeriod, fen, num, pct } from '../format.js';
import { t, tOr } from '../i18n.js';
import { Empty, ErrorNote, Input, Notice, Page, Select, Stat, html, useData } from '../ui.js';

/** All GPU-hours of a figures object, over models. */
const gpuHours = (f) => Object.values(f.gpuHours).reduce((a, b) => a + b, 0);

function FiguresRow({ name, f }) {
  return html`<tr>
    <th scope="row">${name}</th>
    <td>${num(f.jobs)}</td>
    <td>${amount(f.coreHours)}</td>
    <td>${amount(gpuHours(f))}</td>
    <td>${amount(f.memGiBHours)}</td>
    <td>${amount(f.kWh)}</td>
    <td>${pct(f.greenShare)}</td>
    <td>${amount(f.carbonKg)}</td>
  </tr>`;
}

function FiguresTable({ title, rows }) {
  if (rows.length === 0) return null;
  return html`<section><h3>${title}</h3><div class="table-wrap"><table>
    <thead><tr><th scope="col"></th><th scope="col">${t('usage.jobs')}</th><th scope="col">${t('usage.coreHours')}</th><th scope="col">${t('usage.gpuHours')}</th><th scope="col">${t('usage.memGiBHours')}</th><th scope="col">kWh</th><th scope="col">${t('usage.greenShare')}</th><th scope="col">${t('usage.carbonKg')}</th></tr></thead>
    <tbody>${rows.map(([name, f]) => html`<${FiguresRow} name=${name} f=${f} />`)}</tbody>
  </table></div></section>`;
}

function GpuModels({ byModel }) {
  const rows = Object.entries(byModel);
  if (rows.length === 0) return null;
  return html`<section><h3>${t('usage.byGpuModel')}</h3><div class="table-wrap"><table>
    <thead><tr><th scope="col">${t('usage.gpuModel')}</th><th scope="col">${t('usage.jobs')}</th><th scope="col">${t('usage.gpuHours')}</th></tr></thead>
    <tbody>${rows.map(([model, g]) => html`<tr><th scope="row">${model}</th><td>${num(g.jobs)}</td><td>${amount(g.gpuHours)}</td></tr>`)}</tbody>
  </table></div></section>`;
}

function Bill({ tenant, period }) {
  const bill = useData(() => api(`/v1/bills/${encodeURIComponent(tenant)}/${period}`), [tenant, period]);
  const [notice, setNotice] = useState();
  const csv = async () => {
    try {
      await download(`/v1/bills/${encodeURIComponent(tenant)}/${period}?format=csv`, `bill-${tenant}-${period}.csv`);
      setNotice(t('usage.downloaded'));
    } catch (err) {
      setNotice(err.message);
    }
  };
  const b = bill.data;
  return html`<section aria-labelledby="bill-title" class="card">
    <div class="section-head">
      <h2 id="bill-title">${t('usage.bill', { tenant, period })}</h2>
      <button type="button" class="primary" onClick=${csv} disabled=${!b}>${t('usage.csv')}</button>
    </div>
    <${Notice} text=${notice} />
    <${ErrorNote} error=${bill.error} />
    ${b && b.lines.length === 0 ? html`<${Empty} text=${t('usage.noLines')} />` : null}
    ${b && b.lines.length > 0
      ? html`<div class="table-wrap"><table class="bill">
          <thead><tr><th scope="col">${t('jobs.pool')}</th><th scope="col">${t('usage.item')}</th><th scope="col">${t('usage.band')}</th><th scope="col">${t('usage.quantity')}</th><th scope="col">${t('usage.unitPrice')}</th><th scope="col">${t('usage.charge')}</th><th scope="col">${t('usage.discount')}</th><th scope="col">${t('usage.amount')}</th></tr></thead>
          <tbody>${b.lines.map(
            (l) => html`<tr>
              <td>${t(`pool.${l.pool}`)}</td>
              <td>${t(`item.${l.item}`)}${l.gpuModel ? ` ${l.gpuModel}` : ''}</td>
              <td>${l.band ? tOr(`band.${l.band}`, l.band) : '–'}</td>
              <td class="num">${l.quantity.value} ${l.quantity.unit}</td>
              <td class="num">${fen(Number(l.unitPriceFen), b.currency, 5)}${l.ceilingApplied ? html` <abbr title=${t('usage.ceiling')}>*</abbr>` : null}</td>
              <td class="num">${fen(l.chargeFen, b.currency)}</td>
              <td class="num">${l.discountFen ? `−${fen(l.discountFen, b.currency)}` : '–'}</td>
              <td class="num">${fen(l.amountFen, b.currency)}</td>
            </tr>`,
          )}</tbody>
          <tfoot><tr><th scope="row" colspan="5">${t('usage.total')}</th><td class="num">${fen(b.totals.chargeFen, b.currency)}</td><td class="num">${b.totals.discountFen ? `−${fen(b.totals.discountFen, b.currency)}` : '–'}</td><td class="num"><strong>${fen(b.totals.amountFen, b.currency)}</strong></td></tr></tfoot>
        </table></div>
        <p class="muted small">${t('usage.interval', { interval: b.generatedFor })}</p>`
      : null}
  </section>`;
}

export function Usage({ me }) {
  const isOperator = me.kind === 'operator';
  const [period, setPeriod] = useState(currentPeriod());
  const [tenant, setTenant] = useState(isOperator ? '' : me.name);
  const tenants = useData(() => api('/v1/tenants').then((r) => r.items.map((x) => x.name)), []);
  const valid = /^\d{4}-(0[1-9]|1[0-2])$/.test(period);
  const usage = useData(() => (valid ? api(`/v1/usage${query({ period, tenant: isOperator ? tenant : undefined })}`) : Promise.resolve(undefined)), [period, tenant, valid]);
  const u = usage.data;
  const billTenant = isOperator ? tenant || tenants.data?.[0] : me.name;
  return html`<${Page} title=${t('nav.usage')} busy=${usage.loading}>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label=${t('usage.filters')}>
      <${Input} label=${t('usage.period')} type="month" value=${period} onInput=${setPeriod} required />
      ${isOperator ? html`<${Select} label=${t('jobs.tenant')} value=${tenant} onChange=${setTenant} options=${[['', t('common.all')], ...(tenants.data ?? []).map((n) => [n, n])]} />` : null}
      ${isOperator ? html`<p class="filters-link"><a href="#/disclosure">${t('usage.disclosureLink')}</a></p>` : null}
    </form>
    <${ErrorNote} error=${usage.error} />
    ${u
      ? html`<div class="stats">
            <${Stat} label=${t('usage.jobs')} value=${num(u.total.jobs)} />
            <${Stat} label=${t('usage.coreHours')} value=${amount(u.total.coreHours)} />
            <${Stat} label=${t('usage.gpuHours')} value=${amount(gpuHours(u.total))} />
            <${Stat} label=${t('usage.energy')} value=${`${amount(u.total.kWh)} kWh`} />
            <${Stat} label=${t('usage.greenShare')} value=${pct(u.total.greenShare)} tone="green" />
            <${Stat} label=${t('usage.carbon')} value=${`${amount(u.total.carbonKg)} kg`} />
          </div>
          <p class="muted small">${t('usage.interval', { interval: u.interval })}</p>
          ${billTenant ? html`<${Bill} key=${`${billTenant}/${period}`} tenant=${billTenant} period=${period} />` : null}
          <${FiguresTable} title=${t('usage.byPool')} rows=${Object.entries(u.byPool).map(([p, f]) => [t(`pool.${p}`), f])} />
          ${isOperator && !tenant ? html`<${FiguresTable} title=${t('usage.byTenant')} rows=${Object.entries(u.byTenant)} />` : null}
          <${GpuModels} byModel=${u.byGpuModel} />`
      : null}
  <//>`;
}
