// Tenants: weights, quotas, what each uses and queues, and where it stands in fair share; operators edit quotas.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { cores, gpus, num, pct } from '../format.js';
import { t } from '../i18n.js';
import { ErrorNote, Input, Notice, Page, Updated, html, useData } from '../ui.js';
import { POOLS } from './jobs.js';

const REFRESH_MS = 5_000;

/**
 * A tenant's dominant share of a pool — its largest share of the pool's cores, memory or GPUs — and that
 * divided by its weight: what the queue's fair-share order compares (src/core/fair-share.ts), smallest first.
 */
function shares(tenant, poolsById) {
  return Object.fromEntries(
    tenant.pools.map((p) => {
      const cap = poolsById[p.pool]?.capacity;
      const ratio = (used, total) => (total > 0 ? used / total : 0);
      const dominant = cap ? Math.max(ratio(p.used.cpuMillis, cap.cpuMillis), ratio(p.used.memBytes, cap.memBytes), ratio(p.used.gpuMilli, cap.gpus * 1000)) : 0;
      return [p.pool, { dominant, weighted: dominant / Math.max(1e-9, tenant.weight) }];
    }),
  );
}

/** Each tenant's place in each pool's fair-share order: 1 goes first. */
function standings(tenants, poolsById) {
  const byTenant = Object.fromEntries(tenants.map((x) => [x.name, shares(x, poolsById)]));
  const rank = {};
  for (const pool of POOLS) {
    const order = tenants.map((x) => x.name).sort((a, b) => byTenant[a][pool].weighted - byTenant[b][pool].weighted || (a < b ? -1 : 1));
    order.forEach((name, i) => ((rank[name] ??= {})[pool] = i + 1));
  }
  return { byTenant, rank };
}

const limit = (v, fmt = num) => (v === undefined ? t('tenants.unlimited') : fmt(v));

/** The quota form: per pool, cores, GPUs, running and pending jobs; empty means no limit. */
function QuotaForm({ tenant, onSaved, onCancel }) {
  const initial = Object.fromEntries(
    POOLS.map((pool) => {
      const q = tenant.pools.find((p) => p.pool === pool)?.quota ?? {};
      return [pool, { cores: q.cpuMillis === undefined ? '' : String(q.cpuMillis / 1000), gpus: q.gpus === undefined ? '' : String(q.gpus), runningJobs: q.runningJobs === undefined ? '' : String(q.runningJobs), pendingJobs: q.pendingJobs === undefined ? '' : String(q.pendingJobs) }];
    }),
  );
  const [values, setValues] = useState(initial);
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const set = (pool, field) => (v) => setValues({ ...values, [pool]: { ...values[pool], [field]: v } });
  const save = async (e) => {
    e.preventDefault();
    const body = {};
    for (const pool of POOLS) {
      const v = values[pool];
      const q = {};
      if (v.cores !== '') q.cpuMillis = Math.round(Number(v.cores) * 1000);
      for (const f of ['gpus', 'runningJobs', 'pendingJobs']) if (v[f] !== '') q[f] = Number(v[f]);
      if (Object.keys(q).length) body[pool] = q;
    }
    setBusy(true);
    setError(undefined);
    try {
      await api(`/v1/tenants/${encodeURIComponent(tenant.name)}/quotas`, { method: 'PUT', body });
      onSaved();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const field = (pool, name, label, step) => html`<${Input} label=${label} value=${values[pool][name]} onInput=${set(pool, name)} type="number" min="0" step=${step} placeholder=${t('tenants.unlimited')} />`;
  return html`<form class="quota-form" onSubmit=${save} aria-label=${t('tenants.editFor', { name: tenant.name })}>
    ${POOLS.map(
      (pool) => html`<fieldset>
        <legend>${t(`pool.${pool}`)}</legend>
        ${field(pool, 'cores', t('tenants.cores'), '0.001')}
        ${field(pool, 'gpus', t('tenants.gpus'), '1')}
        ${field(pool, 'runningJobs', t('tenants.runningJobs'), '1')}
        ${field(pool, 'pendingJobs', t('tenants.pendingJobs'), '1')}
      </fieldset>`,
    )}
    <p class="muted small">${t('tenants.emptyIsUnlimited')}</p>
    <${ErrorNote} error=${error} />
    <div class="button-row">
      <button type="button" onClick=${onCancel} disabled=${busy}>${t('common.back')}</button>
      <button type="submit" class="primary" disabled=${busy}>${t('tenants.save')}</button>
    </div>
  </form>`;
}

function TenantCard({ tenant, standing, rank, isOperator, onChanged }) {
  const [editing, setEditing] = useState(false);
  const [notice, setNotice] = useState();
  return html`<article class="card tenant" aria-labelledby=${`tenant-${tenant.name}`} data-tenant=${tenant.name}>
    <div class="section-head">
      <h2 id=${`tenant-${tenant.name}`}>${tenant.displayName ?? tenant.name} ${tenant.displayName ? html`<span class="muted small mono">${tenant.name}</span>` : null}</h2>
      ${isOperator && !editing ? html`<button type="button" onClick=${() => setEditing(true)}>${t('tenants.edit')}</button>` : null}
    </div>
    <p class="muted">${t('tenants.weight')}: <strong>${num(tenant.weight, 2)}</strong> · ${t('tenants.billing')}: ${tenant.billingClass} · ${t('tenants.dataClasses')}: ${tenant.dataClasses.join(', ')}</p>
    <${Notice} text=${notice} />
    ${editing
      ? html`<${QuotaForm} tenant=${tenant} onCancel=${() => setEditing(false)} onSaved=${() => { setEditing(false); setNotice(t('tenants.saved')); onChanged(); }} />`
      : html`<div class="table-wrap"><table>
          <thead><tr>
            <th scope="col">${t('jobs.pool')}</th><th scope="col">${t('tenants.cores')}</th><th scope="col">${t('tenants.gpus')}</th>
            <th scope="col">${t('tenants.runningJobs')}</th><th scope="col">${t('tenants.pendingJobs')}</th><th scope="col">${t('tenants.share')}</th><th scope="col">${t('tenants.standing')}</th>
          </tr></thead>
          <tbody>${tenant.pools.map(
            (p) => html`<tr>
              <th scope="row">${t(`pool.${p.pool}`)}</th>
              <td>${cores(p.used.cpuMillis)} / ${limit(p.quota.cpuMillis, cores)}</td>
              <td>${gpus(p.used.gpuMilli)} / ${limit(p.quota.gpus)}</td>
              <td>${num(p.used.runningJobs)} / ${limit(p.quota.runningJobs)}</td>
              <td>${num(p.used.pendingJobs)} / ${limit(p.quota.pendingJobs)}</td>
              <td>${pct(standing[p.pool].dominant, 1)} <span class="muted small">(${t('tenants.weighted')} ${pct(standing[p.pool].weighted, 1)})</span></td>
              <td>${rank ? `#${rank[p.pool]}` : '–'}</td>
            </tr>`,
          )}</tbody>
        </table></div>`}
  </article>`;
}

export function Tenants({ me }) {
  const isOperator = me.kind === 'operator';
  const data = useData(async () => {
    const [tenants, pools] = await Promise.all([api('/v1/tenants'), api('/v1/pools')]);
    return { tenants: tenants.items, pools: Object.fromEntries(pools.items.map((p) => [p.pool, p])) };
  }, [], REFRESH_MS);
  const tenants = data.data?.tenants ?? [];
  const { byTenant, rank } = standings(tenants, data.data?.pools ?? {});
  return html`<${Page} title=${t('nav.tenants')} busy=${data.loading}>
    <${ErrorNote} error=${data.error} />
    <p class="muted">${t('tenants.intro')}</p>
    <${Updated} at=${data.at} everySeconds=${REFRESH_MS / 1000} />
    ${tenants.map((x) => html`<${TenantCard} key=${x.name} tenant=${x} standing=${byTenant[x.name]} rank=${isOperator ? rank[x.name] : undefined} isOperator=${isOperator} onChanged=${data.reload} />`)}
  <//>`;
}
