// Shared pieces of the console's pages: the page frame, data loading with live refresh, labelled controls,
// meters, badges and the confirmation dialog. Preact components written with htm (no build step).
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { t } from './i18n.js';
import { time } from './format.js';

export const html = htm.bind(h);

/**
 * Loads data with `load()` when `deps` change, and again every `refreshMs` (live pages) while the tab is
 * visible. Keeps the last good data while a refresh runs or fails.
 */
export function useData(load, deps, refreshMs) {
  const [state, setState] = useState({ data: undefined, error: undefined, at: undefined });
  const [tick, setTick] = useState(0);
  const loaded = useRef(false);
  useEffect(() => {
    let alive = true;
    let timer;
    const run = async () => {
      // A hidden tab skips its refreshes (nobody is looking), but always loads once.
      if (!document.hidden || !loaded.current) {
        try {
          const data = await load();
          loaded.current = true;
          if (alive) setState({ data, error: undefined, at: new Date() });
        } catch (error) {
          if (alive) setState((s) => ({ ...s, error }));
        }
      }
      if (alive && refreshMs) timer = setTimeout(run, refreshMs);
    };
    run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { ...state, loading: state.data === undefined && state.error === undefined, reload: () => setTick((n) => n + 1) };
}

/** A page: its heading (focused after navigation) and `data-ready` once its first data is shown (tests and the load benchmark wait for it). */
export function Page({ title, busy, actions, children }) {
  const heading = useRef();
  useEffect(() => heading.current?.focus({ preventScroll: true }), [title]);
  // The moment the page first shows its data: bench/ui.ts reads it as the page's load time.
  useEffect(() => {
    if (!busy) performance.mark('qy-page-ready');
  }, [busy]);
  return html`<section class="page" data-ready=${busy ? 'false' : 'true'} aria-busy=${busy ? 'true' : 'false'}>
    <header class="page-head">
      <h1 tabindex="-1" ref=${heading}>${title}</h1>
      ${actions ? html`<div class="page-actions">${actions}</div>` : null}
    </header>
    ${busy ? html`<p class="muted">${t('common.loading')}</p>` : null}
    ${children}
  </section>`;
}

/** An API error in words. */
export function ErrorNote({ error }) {
  if (!error) return null;
  const key = `error.${error.code}`;
  const known = t(key) !== key;
  return html`<p class="error" role="alert">${known ? t(key) : error.message || t('error.generic')}${error.code ? html` <code>${error.code}</code>` : null}</p>`;
}

/** When the data on screen was fetched. */
export function Updated({ at, everySeconds }) {
  if (!at) return null;
  return html`<p class="updated muted">${t('common.updated', { time: time(at) })}${everySeconds ? ` · ${t('common.refreshes', { seconds: everySeconds })}` : ''}</p>`;
}

/** A figure with its label. */
export function Stat({ label, value, hint, tone }) {
  return html`<div class=${`stat ${tone ? `tone-${tone}` : ''}`}>
    <div class="stat-label">${label}</div>
    <div class="stat-value">${value}</div>
    ${hint ? html`<div class="stat-hint muted">${hint}</div>` : null}
  </div>`;
}

/** How much of a total is used, as a labelled bar (role meter) with the figures beside it. */
export function Meter({ label, used, total, text }) {
  const ratio = total > 0 ? Math.min(1, used / total) : 0;
  const level = ratio >= 0.9 ? 'high' : ratio >= 0.6 ? 'mid' : 'low';
  return html`<div class="meter">
    <div class="meter-label"><span>${label}</span><span class="num">${text}</span></div>
    <div class=${`meter-bar level-${level}`} role="meter" aria-label=${label} aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${used} aria-valuetext=${text}>
      <span style=${{ width: `${(ratio * 100).toFixed(1)}%` }}></span>
    </div>
  </div>`;
}

/** A job or node state as a coloured word. */
export function StateBadge({ state, kind = 'state' }) {
  return html`<span class=${`badge ${kind}-${state}`}>${t(`${kind}.${state}`)}</span>`;
}

let fieldIds = 0;
/** A stable id for a label's `for`. */
function useFieldId(prefix) {
  const id = useRef();
  if (!id.current) id.current = `${prefix}-${++fieldIds}`;
  return id.current;
}

/** A labelled select; `options` are [value, label] pairs. */
export function Select({ label, value, onChange, options }) {
  const id = useFieldId('sel');
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${options.map(([v, text]) => html`<option value=${v} selected=${v === value}>${text}</option>`)}
    </select>
  </div>`;
}

/** A labelled input; extra props go to the input. */
export function Input({ label, value, onInput, hint, ...rest }) {
  const id = useFieldId('in');
  const hintId = hint ? `${id}-hint` : undefined;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input id=${id} value=${value} onInput=${(e) => onInput(e.currentTarget.value)} aria-describedby=${hintId} ...${rest} />
    ${hint ? html`<small id=${hintId} class="muted">${hint}</small>` : null}
  </div>`;
}

/**
 * A modal confirmation (the native dialog element: focus stays inside, Escape cancels). `onConfirm` may be
 * async; the dialog stays open with the error if it fails.
 */
export function ConfirmDialog({ title, children, confirmLabel, onConfirm, onClose, danger }) {
  const ref = useRef();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState();
  useEffect(() => {
    ref.current.showModal();
    return () => ref.current?.open && ref.current.close();
  }, []);
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<dialog ref=${ref} class="dialog" aria-labelledby="dialog-title" onCancel=${(e) => { e.preventDefault(); if (!busy) onClose(); }}>
    <h2 id="dialog-title">${title}</h2>
    <div class="dialog-body">${children}</div>
    <${ErrorNote} error=${error} />
    <div class="dialog-actions">
      <button type="button" onClick=${onClose} disabled=${busy}>${t('common.back')}</button>
      <button type="button" class=${danger ? 'danger' : 'primary'} onClick=${confirm} disabled=${busy}>${confirmLabel}</button>
    </div>
  </dialog>`;
}

/** A short status line for the result of an action, read out by screen readers. */
export function Notice({ text }) {
  return html`<p class="notice" role="status" aria-live="polite">${text ?? ''}</p>`;
}

/** A message where a table would be. */
export function Empty({ text }) {
  return html`<p class="empty muted">${text}</p>`;
}
