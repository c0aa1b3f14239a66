// Nodes (operators): a grid by pool and rack, coloured by state and load, with the occupancy of each GPU
// (whole GPUs and gpuMilli shares, from the placements of the jobs on it); cordon, uncordon, drain, and remove a down node.
import { useState } from 'preact/hooks';
import { api, listJobs } from '../api.js';
import { bytes, cores, dateTime, num, pct, watts } from '../format.js';
import { t } from '../i18n.js';
import { ConfirmDialog, Empty, ErrorNote, Input, Notice, Page, Select, StateBadge, Updated, html, useData } from '../ui.js';
import { POOLS } from './jobs.js';

const REFRESH_MS = 5_000;
const NODE_STATES = ['ready', 'cordoned', 'suspect', 'down'];
/** Jobs that hold resources on nodes now. */
const HOLDING = ['placed', 'running', 'cancelling'];

/** Milli-GPUs taken on each GPU of each node, and by which jobs: node id → index → { milli, jobs }. */
async function gpuOccupancy() {
  const lists = await Promise.all(HOLDING.map((state) => listJobs({ state })));
  const byNode = new Map();
  for (const job of lists.flatMap((l) => l.items)) {
    for (const task of job.placement ?? []) {
      for (const index of task.gpuIndices) {
        const gpusOfNode = byNode.get(task.nodeId) ?? new Map();
        byNode.set(task.nodeId, gpusOfNode);
        const gpu = gpusOfNode.get(index) ?? { milli: 0, jobs: [] };
        gpu.milli += task.gpuMilliEach;
        gpu.jobs.push(job.name ?? job.id);
        gpusOfNode.set(index, gpu);
      }
    }
  }
  return byNode;
}

function GpuCells({ node, occupancy }) {
  if (node.allocatable.gpus === 0) return null;
  return html`<div class="gpus" aria-label=${t('nodes.gpusOf', { model: node.gpuModel ?? '' })}>
    ${Array.from({ length: node.allocatable.gpus }, (_, i) => {
      const gpu = occupancy?.get(i);
      const milli = Math.min(1000, gpu?.milli ?? 0);
      const label = t('nodes.gpuCell', { index: i, share: pct(milli / 1000), jobs: gpu?.jobs.join(', ') || t('nodes.free') });
      return html`<span class=${`gpu ${milli >= 1000 ? 'full' : milli > 0 ? 'part' : 'free'}`} title=${label} role="img" aria-label=${label}><span style=${{ height: `${milli / 10}%` }}></span></span>`;
    })}
  </div>`;
}

function load(node) {
  return node.allocatable.cpuMillis > 0 ? node.allocated.cpuMillis / node.allocatable.cpuMillis : 0;
}

function Tile({ node, occupancy, selected, onSelect }) {
  const l = load(node);
  const state = node.draining ? t('nodes.draining') : t(`state.${node.state}`);
  return html`<li>
    <button type="button" class=${`tile state-${node.state} load-${Math.min(4, Math.floor(l * 5))}${node.draining ? ' draining' : ''}`} aria-pressed=${selected ? 'true' : 'false'} onClick=${() => onSelect(node.id)}
      aria-label=${t('nodes.tileLabel', { id: node.id, state, load: pct(l), tasks: node.tasks })} data-node=${node.id}>
      <span class="tile-id mono">${node.id}</span>
      <span class="tile-state">${state}</span>
      <span class="tile-load" aria-hidden="true"><span style=${{ width: `${(l * 100).toFixed(0)}%` }}></span></span>
      <span class="tile-figures">${pct(l)} · ${t('nodes.tasks', { n: node.tasks })}</span>
      <${GpuCells} node=${node} occupancy=${occupancy} />
    </button>
  </li>`;
}

function NodeDetail({ node, occupancy, onChanged }) {
  const [confirm, setConfirm] = useState();
  const [requeue, setRequeue] = useState(false);
  const [notice, setNotice] = useState();
  const act = async (action) => {
    const res = await api(`/v1/nodes/${encodeURIComponent(node.id)}/${action}`, { method: 'POST', body: action === 'drain' ? { requeue } : undefined });
    setNotice(action === 'drain' ? t('nodes.drained', { id: node.id, n: res.requeued }) : t(`nodes.${action}ed`, { id: node.id }));
    onChanged();
  };
  // A down node with nothing on it can be forgotten (the scheduler does it after QY_NODE_GC_AFTER_MS).
  const remove = async () => {
    await api(`/v1/nodes/${encodeURIComponent(node.id)}`, { method: 'DELETE' });
    setNotice(t('nodes.removed', { id: node.id }));
    onChanged();
  };
  return html`<aside class="card node-detail" aria-labelledby="node-title">
    <h2 id="node-title" class="mono">${node.id}</h2>
    <p><${StateBadge} state=${node.state} /> ${node.draining ? html`<span class="badge state-cordoned">${t('nodes.draining')}</span>` : null}</p>
    <dl class="facts">
      <div><dt>${t('jobs.pool')}</dt><dd>${t(`pool.${node.pool}`)}</dd></div>
      <div><dt>${t('nodes.rack')}</dt><dd>${node.rack || '–'}</dd></div>
      <div><dt>${t('nodes.zone')}</dt><dd>${node.zone}</dd></div>
      <div><dt>${t('job.cpu')}</dt><dd>${cores(node.allocated.cpuMillis)} / ${cores(node.allocatable.cpuMillis)}</dd></div>
      <div><dt>${t('job.memory')}</dt><dd>${bytes(node.allocated.memBytes)} / ${bytes(node.allocatable.memBytes)}</dd></div>
      ${node.allocatable.gpus > 0 ? html`<div><dt>${t('job.gpus')}</dt><dd>${num(node.allocated.gpuMilli / 1000, 3)} / ${node.allocatable.gpus} ${node.gpuModel ?? ''}</dd></div>` : null}
      <div><dt>${t('nodes.power')}</dt><dd>${watts(node.powerWatts)}</dd></div>
      <div><dt>${t('nodes.green')}</dt><dd>${pct(node.greenShare)}</dd></div>
      <div><dt>${t('nodes.security')}</dt><dd>${node.securityLevel}</dd></div>
      <div><dt>${t('nodes.heartbeat')}</dt><dd>${dateTime(node.lastHeartbeatAt)}</dd></div>
    </dl>
    ${node.allocatable.gpus > 0
      ? html`<h3>${t('nodes.gpuTable')}</h3><ul class="gpu-list">${Array.from({ length: node.allocatable.gpus }, (_, i) => {
          const g = occupancy?.get(i);
          return html`<li>GPU ${i}: ${pct(Math.min(1000, g?.milli ?? 0) / 1000)} ${g ? `— ${g.jobs.join(', ')}` : ''}</li>`;
        })}</ul>`
      : null}
    <div class="button-row">
      ${node.cordoned
        ? html`<button type="button" onClick=${() => act('uncordon').catch((e) => setNotice(e.message))}>${t('nodes.uncordon')}</button>`
        : html`<button type="button" onClick=${() => act('cordon').catch((e) => setNotice(e.message))}>${t('nodes.cordon')}</button>`}
      <button type="button" class="danger" onClick=${() => setConfirm('drain')} disabled=${node.draining}>${t('nodes.drain')}</button>
      ${node.state === 'down' ? html`<button type="button" class="danger" onClick=${() => setConfirm('remove')}>${t('nodes.remove')}</button>` : null}
    </div>
    <${Notice} text=${notice} />
    ${confirm === 'remove'
      ? html`<${ConfirmDialog} title=${t('nodes.removeTitle', { id: node.id })} confirmLabel=${t('nodes.remove')} danger onConfirm=${remove} onClose=${() => setConfirm(undefined)}>
          <p>${t('nodes.removeText')}</p>
        <//>`
      : null}
    ${confirm === 'drain'
      ? html`<${ConfirmDialog} title=${t('nodes.drainTitle', { id: node.id })} confirmLabel=${t('nodes.drain')} danger onConfirm=${() => act('drain')} onClose=${() => setConfirm(undefined)}>
          <p>${t('nodes.drainText')}</p>
          <label class="check"><input type="checkbox" checked=${requeue} onChange=${(e) => setRequeue(e.currentTarget.checked)} /> ${t('nodes.requeue')}</label>
        <//>`
      : null}
  </aside>`;
}

export function Nodes() {
  const nodes = useData(() => api('/v1/nodes').then((r) => r.items), [], REFRESH_MS);
  const gpus = useData(gpuOccupancy, [], REFRESH_MS);
  const [selected, setSelected] = useState();
  const [state, setState] = useState('');
  const [text, setText] = useState('');
  const all = nodes.data ?? [];
  const shown = all.filter((n) => (!state || n.state === state || (state === 'cordoned' && n.cordoned)) && (!text || n.id.includes(text.trim())));
  const node = all.find((n) => n.id === selected);
  return html`<${Page} title=${t('nav.nodes')} busy=${nodes.loading}>
    <${ErrorNote} error=${nodes.error} />
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label=${t('jobs.filters')}>
      <${Select} label=${t('jobs.state')} value=${state} onChange=${setState} options=${[['', t('common.all')], ...NODE_STATES.map((s) => [s, t(`state.${s}`)])]} />
      <${Input} label=${t('nodes.search')} value=${text} onInput=${setText} type="search" />
    </form>
    <${Updated} at=${nodes.at} everySeconds=${REFRESH_MS / 1000} />
    <p class="legend muted">${t('nodes.legend')} ${NODE_STATES.map((s) => html`<span class=${`badge state-${s}`}>${t(`state.${s}`)}</span> `)}</p>
    ${nodes.data && shown.length === 0 ? html`<${Empty} text=${t('nodes.none')} />` : null}
    <div class=${node ? 'nodes-layout with-detail' : 'nodes-layout'}>
      <div>
        ${POOLS.map((pool) => {
          const inPool = shown.filter((n) => n.pool === pool);
          if (inPool.length === 0) return null;
          const racks = [...new Set(inPool.map((n) => n.rack))].sort();
          return html`<section class="pool-nodes" aria-labelledby=${`nodes-${pool}`}>
            <h2 id=${`nodes-${pool}`}>${t(`pool.${pool}`)} <span class="muted small">${t('overview.nodes', { n: inPool.length })}</span></h2>
            ${racks.map(
              (rack) => html`<div class="rack">
                <h3>${t('nodes.rack')} ${rack || '–'}</h3>
                <ul class="tiles">${inPool
                  .filter((n) => n.rack === rack)
                  .sort((a, b) => (a.id < b.id ? -1 : 1))
                  .map((n) => html`<${Tile} node=${n} occupancy=${gpus.data?.get(n.id)} selected=${n.id === selected} onSelect=${(id) => setSelected(id === selected ? undefined : id)} />`)}</ul>
              </div>`,
            )}
          </section>`;
        })}
      </div>
      ${node ? html`<${NodeDetail} key=${node.id} node=${node} occupancy=${gpus.data?.get(node.id)} onChanged=${() => { nodes.reload(); gpus.reload(); }} />` : null}
    </div>
  <//>`;
}
