// Jobs: a filterable list (state, pool, tenant, submission time, name or id) that refreshes itself.
import { useState } from 'preact/hooks';
import { api, listJobs } from '../api.js';
import { duration, relative, resourcesText } from '../format.js';
import { t } from '../i18n.js';
import { Empty, ErrorNote, Input, Page, Select, StateBadge, Updated, html, useData } from '../ui.js';

const REFRESH_MS = 3_000;
const PAGE_ROWS = 100;
export const JOB_STATES = ['pending', 'placed', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'];
export const POOLS = ['general', 'intelligent', 'super'];
const WINDOWS = { '1h': 3600_000, '24h': 86400_000, '7d': 7 * 86400_000, all: undefined };

/** How long a job waited or has run, as the list shows it. */
function timing(job, nowMs) {
  if (job.finishedAt) return t('jobs.ran', { d: duration(Date.parse(job.finishedAt) - Date.parse(job.startedAt ?? job.submittedAt)) });
  if (job.startedAt) return t('jobs.running', { d: duration(nowMs - Date.parse(job.startedAt)) });
  return t('jobs.waiting', { d: duration(nowMs - Date.parse(job.submittedAt)) });
}

export function Jobs({ me }) {
  const isOperator = me.kind === 'operator';
  const [state, setState] = useState('');
  const [pool, setPool] = useState('');
  const [tenant, setTenant] = useState('');
  const [since, setSince] = useState('24h');
  const [text, setText] = useState('');
  const [rows, setRows] = useState(PAGE_ROWS);
  const tenants = useData(() => (isOperator ? api('/v1/tenants').then((r) => r.items.map((x) => x.name)) : Promise.resolve([])), []);
  const jobs = useData(() => listJobs({ state, pool, tenant }, WINDOWS[since] === undefined ? undefined : Date.now() - WINDOWS[since]), [state, pool, tenant, since], REFRESH_MS);
  const needle = text.trim().toLowerCase();
  const shown = (jobs.data?.items ?? []).filter((j) => !needle || j.id.includes(needle) || (j.name ?? '').toLowerCase().includes(needle));
  const nowMs = Date.now();
  return html`<${Page} title=${t('nav.jobs')} busy=${jobs.loading}>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label=${t('jobs.filters')}>
      <${Select} label=${t('jobs.state')} value=${state} onChange=${setState} options=${[['', t('common.all')], ...JOB_STATES.map((s) => [s, t(`state.${s}`)])]} />
      <${Select} label=${t('jobs.pool')} value=${pool} onChange=${setPool} options=${[['', t('common.all')], ...POOLS.map((p) => [p, t(`pool.${p}`)])]} />
      ${isOperator ? html`<${Select} label=${t('jobs.tenant')} value=${tenant} onChange=${setTenant} options=${[['', t('common.all')], ...(tenants.data ?? []).map((n) => [n, n])]} />` : null}
      <${Select} label=${t('jobs.submitted')} value=${since} onChange=${setSince} options=${Object.keys(WINDOWS).map((w) => [w, t(`window.${w}`)])} />
      <${Input} label=${t('jobs.search')} value=${text} onInput=${setText} type="search" placeholder=${t('jobs.searchHint')} />
    </form>
    <${ErrorNote} error=${jobs.error} />
    <${Updated} at=${jobs.at} everySeconds=${REFRESH_MS / 1000} />
    ${jobs.data?.truncated ? html`<p class="notice">${t('jobs.truncated')}</p>` : null}
    ${jobs.data && shown.length === 0 ? html`<${Empty} text=${t('jobs.none')} />` : null}
    ${shown.length > 0
      ? html`<p class="muted" aria-live="polite">${t('jobs.count', { n: shown.length })}</p>
          <div class="table-wrap">
            <table class="jobs-table">
              <caption class="sr-only">${t('nav.jobs')}</caption>
              <thead><tr>
                <th scope="col">${t('jobs.job')}</th>
                ${isOperator ? html`<th scope="col">${t('jobs.tenant')}</th>` : null}
                <th scope="col">${t('jobs.pool')}</th>
                <th scope="col">${t('jobs.state')}</th>
                <th scope="col">${t('jobs.resources')}</th>
                <th scope="col">${t('jobs.submitted')}</th>
                <th scope="col">${t('jobs.time')}</th>
              </tr></thead>
              <tbody>
                ${shown.slice(0, rows).map(
                  (j) => html`<tr data-job=${j.id}>
                    <td><a href=${`#/jobs/${j.id}`}>${j.name ?? j.id}</a>${j.name ? html`<div class="muted mono small">${j.id}</div>` : null}</td>
                    ${isOperator ? html`<td>${j.tenant}</td>` : null}
                    <td>${t(`pool.${j.pool}`)}<div class="muted small">${j.priorityClass}</div></td>
                    <td><${StateBadge} state=${j.state} />${j.state === 'pending' && j.pendingReason ? html`<div class="muted small reason" title=${j.pendingReason}>${j.pendingReason}</div>` : null}</td>
                    <td>${j.tasks > 1 ? `${j.tasks} × ` : ''}${resourcesText(j.resources, t)}</td>
                    <td title=${j.submittedAt}>${relative(j.submittedAt, nowMs)}</td>
                    <td>${timing(j, nowMs)}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>
          ${shown.length > rows ? html`<button type="button" onClick=${() => setRows(rows + PAGE_ROWS)}>${t('common.showMore')}</button>` : null}`
      : null}
  <//>`;
}
