// Audit (operators): the hash-chained record of every action, filterable, and the chain's verification.
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { dateTime, num } from '../format.js';
import { t } from '../i18n.js';
import { Empty, ErrorNote, Input, Page, Select, html, useData } from '../ui.js';

const ACTIONS = ['job.submit', 'job.cancel', 'node.cordon', 'node.uncordon', 'node.drain', 'node.remove', 'node.forget', 'tenant.quota', 'auth.failed', 'auth.forbidden'];
const PAGE = 1000;
const MAX_PAGES = 20;
const ROWS = 100;

/** Records matching the filter, newest first (the API pages oldest first from afterSeq). */
async function records(filter) {
  const out = [];
  let afterSeq;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await api(`/v1/audit${query({ ...filter, afterSeq, limit: PAGE })}`);
    out.push(...res.items);
    if (res.items.length < PAGE) return { items: out.reverse(), truncated: false };
    afterSeq = res.items[res.items.length - 1].seq;
  }
  return { items: out.reverse(), truncated: true };
}

function Verdict() {
  const verdict = useData(() => api('/v1/audit/verify'), []);
  const v = verdict.data;
  return html`<section aria-labelledby="chain-title" class=${`card chain ${v ? (v.ok ? 'ok' : 'broken') : ''}`}>
    <div class="section-head">
      <h2 id="chain-title">${t('audit.chain')}</h2>
      <button type="button" onClick=${verdict.reload}>${t('audit.verifyAgain')}</button>
    </div>
    <${ErrorNote} error=${verdict.error} />
    ${!v ? html`<p class="muted">${t('audit.verifying')}</p>` : null}
    ${v?.ok ? html`<p role="status" data-chain="ok">✔ ${t('audit.intact', { n: num(v.records) })} <span class="mono small">${v.lastHash.slice(0, 16)}…</span> <span class="muted small">${t('audit.checkedAt', { at: dateTime(v.checkedAt) })}</span></p>` : null}
    ${v && !v.ok ? html`<p role="alert" data-chain="broken">✘ ${t('audit.broken', { seq: v.seq })}: ${v.problem} <span class="muted small">${t('audit.checkedAt', { at: dateTime(v.checkedAt) })}</span></p>` : null}
  </section>`;
}

export function Audit() {
  const [action, setAction] = useState('');
  const [actor, setActor] = useState('');
  const [target, setTarget] = useState('');
  const [since, setSince] = useState('');
  const [rows, setRows] = useState(ROWS);
  const sinceIso = since ? new Date(since).toISOString() : undefined;
  const list = useData(() => records({ action, actor: actor.trim(), target: target.trim(), since: sinceIso }), [action, actor, target, sinceIso], 10_000);
  const items = list.data?.items ?? [];
  return html`<${Page} title=${t('nav.audit')} busy=${list.loading}>
    <${Verdict} />
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label=${t('jobs.filters')}>
      <${Select} label=${t('audit.action')} value=${action} onChange=${setAction} options=${[['', t('common.all')], ...ACTIONS.map((a) => [a, a])]} />
      <${Input} label=${t('audit.actor')} value=${actor} onInput=${setActor} />
      <${Input} label=${t('audit.target')} value=${target} onInput=${setTarget} />
      <${Input} label=${t('audit.since')} type="datetime-local" value=${since} onInput=${setSince} />
    </form>
    <${ErrorNote} error=${list.error} />
    ${list.data?.truncated ? html`<p class="notice">${t('audit.truncated', { n: num(PAGE * MAX_PAGES) })}</p>` : null}
    ${list.data && items.length === 0 ? html`<${Empty} text=${t('audit.none')} />` : null}
    ${items.length > 0
      ? html`<div class="table-wrap"><table class="audit">
          <thead><tr><th scope="col">#</th><th scope="col">${t('audit.time')}</th><th scope="col">${t('audit.actor')}</th><th scope="col">${t('audit.action')}</th><th scope="col">${t('audit.target')}</th><th scope="col">${t('audit.outcome')}</th><th scope="col">${t('audit.details')}</th></tr></thead>
          <tbody>${items.slice(0, rows).map(
            (r) => html`<tr>
              <td class="num">${r.seq}</td>
              <td class="nowrap">${dateTime(r.atMs)}</td>
              <td>${t(`actor.${r.actor.kind}`)} <strong>${r.actor.name}</strong>${r.actor.via ? html` <span class="muted small">${t('audit.via', { via: r.actor.via })}</span>` : null}</td>
              <td class="mono">${r.action}</td>
              <td class="mono">${r.target ?? '–'}</td>
              <td><span class=${`badge outcome-${r.outcome}`}>${t(`outcome.${r.outcome}`)}</span></td>
              <td class="small mono details">${r.details ? JSON.stringify(r.details) : ''}</td>
            </tr>`,
          )}</tbody>
        </table></div>
        ${items.length > rows ? html`<button type="button" onClick=${() => setRows(rows + ROWS)}>${t('common.showMore')}</button>` : null}`
      : null}
  <//>`;
}
