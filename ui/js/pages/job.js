// One job: its spec, placement (nodes, GPU indices), history, attempts, why it waits in plain words, the
// tail of its output, and cancel with a confirmation.
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { bytes, cores, dateTime, duration, gpus, num } from '../format.js';
import { t } from '../i18n.js';
import { explainPending } from '../reasons.js';
import { ConfirmDialog, Empty, ErrorNote, Notice, Page, Select, StateBadge, Updated, html, useData } from '../ui.js';

const REFRESH_MS = 2_000;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

function Fact({ label, children }) {
  return html`<div><dt>${label}</dt><dd>${children ?? '–'}</dd></div>`;
}

function Spec({ job }) {
  const r = job.resources;
  const s = job.spec;
  const c = s?.constraints;
  return html`<section aria-labelledby="spec-title" class="card">
    <h2 id="spec-title">${t('job.spec')}</h2>
    <dl class="facts wide">
      <${Fact} label=${t('jobs.pool')}>${t(`pool.${job.pool}`)}<//>
      <${Fact} label=${t('job.priorityClass')}>${job.priorityClass}<//>
      <${Fact} label=${t('job.dataClass')}>${job.dataClass}<//>
      <${Fact} label=${t('job.tasks')}>${num(job.tasks)}${job.tasks > 1 ? ` (${t('job.gang')})` : ''}<//>
      <${Fact} label=${t('job.cpu')}>${cores(r.cpuMillis)} ${t('unit.cores')}<//>
      <${Fact} label=${t('job.memory')}>${bytes(r.memBytes)}<//>
      ${r.gpus > 0 ? html`<${Fact} label=${t('job.gpus')}>${num(r.gpus)}<//>` : null}
      ${r.gpuMilli > 0 ? html`<${Fact} label=${t('job.gpuShare')}>${gpus(r.gpuMilli)} ${t('unit.gpu')} (${num(r.gpuMilli)}‰)<//>` : null}
      ${r.gpuMemBytes > 0 ? html`<${Fact} label=${t('job.gpuMemory')}>${bytes(r.gpuMemBytes)}<//>` : null}
      ${Object.entries(r.extended ?? {}).map(([k, v]) => html`<${Fact} label=${k}>${num(v)}<//>`)}
      ${s?.walltimeSeconds ? html`<${Fact} label=${t('job.walltime')}>${duration(s.walltimeSeconds * 1000)}<//>` : null}
      ${s?.durationSeconds !== undefined ? html`<${Fact} label=${t('job.duration')}>${duration(s.durationSeconds * 1000)}<//>` : null}
      ${c?.gpuModels?.length ? html`<${Fact} label=${t('job.gpuModels')}>${c.gpuModels.join(', ')}<//>` : null}
      ${c && Object.keys(c.nodeSelector).length ? html`<${Fact} label=${t('job.nodeSelector')}>${Object.entries(c.nodeSelector).map(([k, v]) => `${k}=${v}`).join(', ')}<//>` : null}
      ${s?.deferrable ? html`<${Fact} label=${t('job.deferrable')}>${s.deferrable.deadlineMs ? t('job.deadline', { at: dateTime(s.deferrable.deadlineMs) }) : t('job.maxDelay', { d: duration(s.deferrable.maxDelaySeconds * 1000) })}<//>` : null}
      ${s?.sandbox ? html`<${Fact} label=${t('job.sandbox')}>${t('common.yes')}<//>` : null}
    </dl>
    ${s?.command ? html`<h3>${t('job.command')}</h3><pre class="mono">${s.command.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}</pre>` : null}
    ${s?.envNames?.length ? html`<p class="muted small">${t('job.env', { names: s.envNames.join(', ') })}</p>` : null}
  </section>`;
}

function Placement({ job }) {
  if (!job.placement?.length) return null;
  return html`<section aria-labelledby="placement-title">
    <h2 id="placement-title">${t('job.placement')} <span class="muted small mono">${job.attemptId}</span></h2>
    <div class="table-wrap"><table>
      <thead><tr><th scope="col">${t('job.task')}</th><th scope="col">${t('job.node')}</th><th scope="col">${t('job.gpuIndices')}</th><th scope="col">${t('job.cpu')}</th><th scope="col">${t('job.memory')}</th><th scope="col">${t('jobs.state')}</th><th scope="col">${t('job.exit')}</th></tr></thead>
      <tbody>
        ${job.placement.map(
          (p) => html`<tr>
            <td>${p.taskIndex}</td>
            <td class="mono">${p.nodeId}</td>
            <td>${p.gpuIndices.length ? `${p.gpuIndices.join(', ')}${p.gpuMilliEach < 1000 ? ` (${num(p.gpuMilliEach)}‰)` : ''}` : '–'}</td>
            <td>${cores(p.cpuMillis)}</td>
            <td>${bytes(p.memBytes)}</td>
            <td>${t(`task.${p.state}`)}</td>
            <td>${p.exitCode ?? p.signal ?? '–'}</td>
          </tr>`,
        )}
      </tbody>
    </table></div>
  </section>`;
}

function History({ job }) {
  return html`<section aria-labelledby="history-title">
    <h2 id="history-title">${t('job.history')} ${job.attempts > 0 ? html`<span class="muted small">${t('job.attempts', { n: job.attempts, max: job.maxAttempts })}</span>` : null}</h2>
    ${job.history.length === 0
      ? html`<${Empty} text=${t('job.noAttempts')} />`
      : html`<ol class="timeline">
          <li><time datetime=${job.submittedAt}>${dateTime(job.submittedAt)}</time> ${t('job.submittedEvent')}</li>
          ${job.history.map((a) => html`<li><time datetime=${a.at}>${dateTime(a.at)}</time> <span class="mono">${a.attemptId}</span> ${t('job.onNodes', { nodes: a.nodes.join(', ') })}: <strong>${a.outcome}</strong>${a.reason ? ` — ${a.reason}` : ''}</li>`)}
        </ol>`}
  </section>`;
}

function LogTail({ job }) {
  const [task, setTask] = useState('0');
  const running = !TERMINAL.has(job.state);
  const log = useData(() => api(`/v1/jobs/${encodeURIComponent(job.id)}/log${query({ task, bytes: 16384 })}`), [job.id, task, job.attemptId], running ? 5_000 : undefined);
  if (!job.attemptId) return null;
  return html`<section aria-labelledby="log-title">
    <div class="section-head">
      <h2 id="log-title">${t('job.log')}</h2>
      <div class="controls">
        ${job.tasks > 1 ? html`<${Select} label=${t('job.task')} value=${task} onChange=${setTask} options=${Array.from({ length: job.tasks }, (_, i) => [String(i), String(i)])} />` : null}
        <button type="button" onClick=${log.reload}>${t('common.refresh')}</button>
      </div>
    </div>
    ${log.error ? html`<p class="muted">${log.error.code === 'QY_ERR_LOG_UNAVAILABLE' || log.error.code === 'QY_ERR_AGENT_UNAVAILABLE' ? t('job.noLog', { why: log.error.message }) : log.error.message}</p>` : null}
    ${log.data ? html`<pre class="log" tabindex="0" aria-label=${t('job.log')}>${log.data.truncated ? `${t('job.logTruncated')}\n` : ''}${log.data.text || t('job.logEmpty')}</pre>` : null}
  </section>`;
}

export function Job({ id }) {
  const job = useData(() => api(`/v1/jobs/${encodeURIComponent(id)}`), [id], REFRESH_MS);
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState();
  const j = job.data;
  const cancel = async () => {
    const res = await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
    setNotice(t('job.cancelRequested', { state: t(`state.${res.state}`) }));
    job.reload();
  };
  const actions = j && !TERMINAL.has(j.state) ? html`<button type="button" class="danger" onClick=${() => setConfirming(true)} disabled=${j.state === 'cancelling'}>${t('job.cancel')}</button>` : null;
  return html`<${Page} title=${j ? (j.name ?? j.id) : t('job.title', { id })} busy=${job.loading} actions=${actions}>
    <p><a href="#/jobs">← ${t('nav.jobs')}</a></p>
    ${job.error?.status === 404 ? html`<p class="error" role="alert">${t('job.notFound', { id })}</p>` : html`<${ErrorNote} error=${job.error} />`}
    <${Notice} text=${notice} />
    ${j
      ? html`<div class="job-head">
            <${StateBadge} state=${j.state} />
            <span class="mono">${j.id}</span>
            <span>${t('job.of', { tenant: j.tenant })}</span>
          </div>
          <${Updated} at=${job.at} everySeconds=${TERMINAL.has(j.state) ? undefined : REFRESH_MS / 1000} />
          ${j.state === 'pending'
            ? html`<section class="card why" aria-labelledby="why-title">
                <h2 id="why-title">${t('job.why')}</h2>
                ${explainPending(j.pendingReason).map((e) => html`<p>${e.text}</p>${e.items?.length ? html`<ul>${e.items.map((i) => html`<li>${i}</li>`)}</ul>` : null}`)}
                <details><summary>${t('job.rawReason')}</summary><p class="mono small">${j.pendingReason}</p></details>
              </section>`
            : null}
          ${j.reason ? html`<p class="card">${t('job.reason')}: ${j.reason}</p>` : null}
          <dl class="facts wide">
            <${Fact} label=${t('job.submittedAt')}>${dateTime(j.submittedAt)}<//>
            <${Fact} label=${t('job.placedAt')}>${j.placedAt && dateTime(j.placedAt)}<//>
            <${Fact} label=${t('job.startedAt')}>${j.startedAt && dateTime(j.startedAt)}<//>
            <${Fact} label=${t('job.finishedAt')}>${j.finishedAt && dateTime(j.finishedAt)}<//>
            <${Fact} label=${t('job.exit')}>${j.exitCode ?? j.signal}<//>
            ${j.preempting ? html`<${Fact} label=${t('job.preempting')}>${j.preempting.join(', ')}<//>` : null}
          </dl>
          <${Spec} job=${j} />
          <${Placement} job=${j} />
          <${History} job=${j} />
          <${LogTail} job=${j} />`
      : null}
    ${confirming
      ? html`<${ConfirmDialog} title=${t('job.cancelTitle', { name: j.name ?? j.id })} confirmLabel=${t('job.cancelConfirm')} danger onConfirm=${cancel} onClose=${() => setConfirming(false)}>
          <p>${j.state === 'pending' ? t('job.cancelPending') : t('job.cancelRunning')}</p>
        <//>`
      : null}
  <//>`;
}
