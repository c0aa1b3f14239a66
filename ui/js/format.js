// Numbers, sizes, times and money as people read them, in the console's language.
import { lang } from './i18n.js';

const GiB = 1024 ** 3;

/** The Intl locale of the console's language. */
export function locale() {
  return lang() === 'zh' ? 'zh-CN' : 'en-GB';
}

const formatters = new Map();
/** One Intl formatter per kind, locale and options: making one costs far more than using it, and a table formats thousands of values. */
function intl(Kind, options) {
  const key = `${Kind.name}|${locale()}|${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Kind(locale(), options)));
  return f;
}

export function num(n, maxDigits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return intl(Intl.NumberFormat, { maximumFractionDigits: maxDigits }).format(n);
}

/** A metered quantity (hours, kWh, kg): three significant digits below 100, whole numbers above, so small use does not show as 0. */
export function amount(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const opts = Math.abs(n) < 100 ? { maximumSignificantDigits: 3 } : { maximumFractionDigits: 0 };
  return intl(Intl.NumberFormat, opts).format(n);
}

/** Cores from milli-cores. */
export function cores(cpuMillis) {
  return num(cpuMillis / 1000, cpuMillis % 1000 === 0 ? 0 : 1);
}

/** GPUs from milli-GPUs: 2, 0.25. */
export function gpus(gpuMilli) {
  return num(gpuMilli / 1000, 3);
}

/** Bytes in the largest binary unit that keeps the figure above 1. */
export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${num(v, v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

/** Whole GiB, for memory totals of pools. */
export function gib(n) {
  return num(n / GiB, 0);
}

export function pct(ratio, digits = 0) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '–';
  return intl(Intl.NumberFormat, { style: 'percent', maximumFractionDigits: digits }).format(ratio);
}

export function watts(w) {
  return w >= 1000 ? `${num(w / 1000, 1)} kW` : `${num(w, 0)} W`;
}

export function dateTime(at) {
  if (!at) return '–';
  return intl(Intl.DateTimeFormat, { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(at));
}

export function time(at) {
  if (!at) return '–';
  return intl(Intl.DateTimeFormat, { timeStyle: 'medium' }).format(new Date(at));
}

/** A duration in milliseconds, to the two largest units: "2 h 5 min", "45 s". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  const parts = [
    [Math.floor(s / 86400), 'day'],
    [Math.floor((s % 86400) / 3600), 'hour'],
    [Math.floor((s % 3600) / 60), 'minute'],
    [s % 60, 'second'],
  ].filter(([n]) => n > 0);
  if (parts.length === 0) return unit(0, 'second');
  return parts
    .slice(0, 2)
    .map(([n, u]) => unit(n, u))
    .join(' ');
}

function unit(n, u) {
  return intl(Intl.NumberFormat, { style: 'unit', unit: u, unitDisplay: 'short' }).format(n);
}

/** "3 min ago", "in 2 h". */
export function relative(at, nowMs = Date.now()) {
  if (!at) return '–';
  const diffS = (new Date(at).getTime() - nowMs) / 1000;
  const abs = Math.abs(diffS);
  const [value, u] = abs < 60 ? [diffS, 'second'] : abs < 3600 ? [diffS / 60, 'minute'] : abs < 86400 ? [diffS / 3600, 'hour'] : [diffS / 86400, 'day'];
  return intl(Intl.RelativeTimeFormat, { numeric: 'auto', style: 'short' }).format(Math.round(value), u);
}

/** Money from fen, in yuan; `maxDigits` for unit prices, which are fractions of a fen. */
export function fen(amountFen, currency = 'CNY', maxDigits = 2) {
  return intl(Intl.NumberFormat, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: maxDigits }).format(amountFen / 100);
}

/** The month now, `YYYY-MM`, in the cluster's time zone (UTC+8, as bills count it). */
export function currentPeriod(nowMs = Date.now()) {
  return new Date(nowMs + 8 * 3600_000).toISOString().slice(0, 7);
}

/** A task's resources in one line: "4 cores · 16 GiB · 2 GPUs". */
export function resourcesText(r, t) {
  const parts = [`${cores(r.cpuMillis)} ${t('unit.cores')}`, bytes(r.memBytes)];
  if (r.gpus > 0) parts.push(`${r.gpus} ${t('unit.gpus')}`);
  if (r.gpuMilli > 0) parts.push(`${gpus(r.gpuMilli)} ${t('unit.gpu')}`);
  return parts.join(' · ');
}
