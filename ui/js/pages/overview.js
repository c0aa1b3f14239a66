// Overview: the three pools' capacity and allocation, the queue, running jobs, power and green share, and
// charts over the last hours (Prometheus for operators; otherwise values sampled since the page opened).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Chart, PromChart, Samples, usePrometheus } from '../chart.js';
import { cores, gib, gpus, num, pct, watts } from '../format.js';
import { t } from '../i18n.js';
import { ErrorNote, Meter, Page, Select, Stat, Updated, html, useData } from '../ui.js';

const REFRESH_MS = 5_000;
/** Sampled while the console is open, across visits to the page. */
const live = { cpu: new Samples(), queue: new Samples() };

/** GPUs by model in each pool, from the node list (operators). */
function gpusByModel(nodes) {
  const out = {};
  for (const n of nodes ?? []) {
    if (!n.gpuModel || n.allocatable.gpus === 0) continue;
    const m = ((out[n.pool] ??= {})[n.gpuModel] ??= { total: 0, usedMilli: 0 });
    m.total += n.allocatable.gpus;
    m.usedMilli += n.allocated.gpuMilli;
  }
  return out;
}

function PoolCard({ pool, models }) {
  const states = Object.entries(pool.nodes).filter(([, n]) => n > 0);
  const total = states.reduce((s, [, n]) => s + n, 0);
  return html`<article class="card pool-card" aria-labelledby=${`pool-${pool.pool}`}>
    <h2 id=${`pool-${pool.pool}`}>${t(`pool.${pool.pool}`)}</h2>
    <p class="muted">${t('overview.nodes', { n: num(total) })}: ${states.map(([s, n]) => html`<span class=${`badge state-${s}`}>${t(`state.${s}`)} ${num(n)}</span> `)}</p>
    <${Meter} label=${t('overview.cpu')} used=${pool.allocated.cpuMillis} total=${pool.capacity.cpuMillis} text=${`${cores(pool.allocated.cpuMillis)} / ${cores(pool.capacity.cpuMillis)} ${t('unit.cores')}`} />
    <${Meter} label=${t('overview.memory')} used=${pool.allocated.memBytes} total=${pool.capacity.memBytes} text=${`${gib(pool.allocated.memBytes)} / ${gib(pool.capacity.memBytes)} GiB`} />
    ${pool.capacity.gpus > 0
      ? html`<${Meter} label=${t('overview.gpus')} used=${pool.allocated.gpuMilli} total=${pool.capacity.gpus * 1000} text=${`${gpus(pool.allocated.gpuMilli)} / ${num(pool.capacity.gpus)}`} />`
      : null}
    ${Object.entries(models ?? {}).map(
      ([model, m]) => html`<${Meter} label=${`${t('overview.gpuModel')} ${model}`} used=${m.usedMilli} total=${m.total * 1000} text=${`${gpus(m.usedMilli)} / ${num(m.total)}`} />`,
    )}
    <dl class="facts">
      <div><dt>${t('overview.pending')}</dt><dd>${num(pool.queue.pending)}</dd></div>
      <div><dt>${t('overview.running')}</dt><dd>${num(pool.jobs.running)}</dd></div>
      <div><dt>${t('overview.placed')}</dt><dd>${num(pool.jobs.placed)}</dd></div>
    </dl>
  </article>`;
}

const ratio = (v) => pct(v, 0);
const count = (v) => num(v, 1);
const perSecond = (v) => `${num(v, 2)}/s`;
/** Y from 0, to at least 1 (a ratio's full scale; a count's first step). */
const fromZero = (_min, max) => [0, Math.max(1, max)];
const POOL_IDS = ['general', 'intelligent', 'super'];
const poolLines = (samples) => samples.lines(POOL_IDS).map((l) => ({ ...l, label: t(`pool.${l.label}`) }));

function Charts({ me }) {
  const prom = usePrometheus(me);
  const [minutes, setMinutes] = useState('180');
  if (!prom.known) return null;
  if (prom.available) {
    const m = Number(minutes);
    return html`<section aria-labelledby="charts-title">
      <div class="section-head">
        <h2 id="charts-title">${t('overview.charts')}</h2>
        <${Select} label=${t('overview.range')} value=${minutes} onChange=${setMinutes} options=${[['60', t('range.1h')], ['180', t('range.3h')], ['720', t('range.12h')], ['1440', t('range.24h')]]} />
      </div>
      <p class="muted">${t('overview.fromPrometheus')}</p>
      <div class="chart-grid">
        <${PromChart} series="pool:qy_cpu_utilisation:ratio" title=${t('chart.cpu')} format=${ratio} minutes=${m} yRange=${fromZero} />
        <${PromChart} series="pool:qy_gpu_utilisation:ratio" title=${t('chart.gpu')} format=${ratio} minutes=${m} yRange=${fromZero} />
        <${PromChart} series="pool:qy_jobs_pending:sum" title=${t('chart.pending')} format=${count} minutes=${m} yRange=${fromZero} />
        <${PromChart} series="pool:qy_jobs_placed:rate1m" title=${t('chart.placed')} format=${perSecond} minutes=${m} yRange=${fromZero} />
        <${PromChart} series="cluster:qy_green_power_share:ratio_5m" title=${t('chart.green')} format=${ratio} minutes=${m} yRange=${fromZero} labelOf=${() => t('chart.cluster')} />
        <${PromChart} series="pool:qy_submit_to_running_seconds:p99_5m" title=${t('chart.submitToRunning')} format=${(v) => `${num(v, 2)} s`} minutes=${m} yRange=${fromZero} />
      </div>
    </section>`;
  }
  const note = me.kind === 'operator' ? t('overview.noPrometheus') : t('overview.tenantCharts');
  return html`<section aria-labelledby="charts-title">
    <h2 id="charts-title">${t('overview.chartsLive')}</h2>
    <p class="muted">${note}</p>
    <div class="chart-grid">
      <${Chart} title=${t('chart.cpu')} x=${live.cpu.x} lines=${poolLines(live.cpu)} format=${ratio} source="live" yRange=${fromZero} />
      <${Chart} title=${t('chart.pending')} x=${live.queue.x} lines=${poolLines(live.queue)} format=${count} source="live" yRange=${fromZero} />
    </div>
  </section>`;
}

export function Overview({ me }) {
  const isOperator = me.kind === 'operator';
  const pools = useData(async () => {
    const res = await api('/v1/pools');
    live.cpu.add(Object.fromEntries(res.items.map((p) => [p.pool, p.capacity.cpuMillis > 0 ? p.allocated.cpuMillis / p.capacity.cpuMillis : null])));
    live.queue.add(Object.fromEntries(res.items.map((p) => [p.pool, p.queue.pending])));
    return res.items;
  }, [], REFRESH_MS);
  const green = useData(() => api('/v1/green?hours=1'), [], REFRESH_MS * 2);
  const nodes = useData(() => (isOperator ? api('/v1/nodes').then((r) => r.items) : Promise.resolve([])), [], REFRESH_MS * 2);
  const models = gpusByModel(nodes.data);
  const items = pools.data ?? [];
  const pending = items.reduce((s, p) => s + p.queue.pending, 0);
  const running = items.reduce((s, p) => s + p.jobs.running, 0);
  const ready = items.reduce((s, p) => s + (p.nodes.ready ?? 0), 0);
  const allNodes = items.reduce((s, p) => s + Object.values(p.nodes).reduce((a, b) => a + b, 0), 0);
  const power = (green.data?.pools ?? []).reduce((s, p) => s + p.powerWatts, 0);
  const greenPower = (green.data?.pools ?? []).reduce((s, p) => s + p.greenWatts, 0);
  return html`<${Page} title=${t('nav.overview')} busy=${pools.loading}>
    <${ErrorNote} error=${pools.error} />
    <div class="stats">
      <${Stat} label=${t('overview.queue')} value=${num(pending)} />
      <${Stat} label=${t('overview.runningJobs')} value=${num(running)} />
      <${Stat} label=${t('overview.readyNodes')} value=${`${num(ready)} / ${num(allNodes)}`} />
      <${Stat} label=${t('overview.power')} value=${green.data ? watts(power) : '–'} />
      <${Stat} label=${t('overview.greenShare')} value=${green.data && power > 0 ? pct(greenPower / power) : '–'} tone="green" />
      <${Stat} label=${t('overview.carbon')} value=${green.data ? `${num(green.data.signal.gridGPerKwh)} g/kWh` : '–'} hint=${t('overview.carbonHint')} />
    </div>
    <${Updated} at=${pools.at} everySeconds=${REFRESH_MS / 1000} />
    <div class="pool-grid">${items.map((p) => html`<${PoolCard} pool=${p} models=${models[p.pool]} />`)}</div>
    <${Charts} me=${me} />
  <//>`;
}
