// Why a job waits, in plain words: the scheduler's pending reason (English, stable phrases from
// src/core/reasons.ts, scheduler/scheduling.ts, scheduler/power-budget.ts and scheduler/green-deferral.ts)
// turned into sentences in the console's language. Anything not recognised is shown as the scheduler said it.
import { t } from './i18n.js';
import { dateTime, num } from './format.js';

/** The node-level reasons of src/core/reasons.ts, by their text, as keys of the dictionary. */
const NODE_REASONS = [
  ['cordoned', 'cordoned'],
  ['suspect (heartbeats missing)', 'suspect'],
  ['down', 'down'],
  ['in another pool', 'otherPool'],
  ['have no GPUs', 'noGpus'],
  ['GPU memory too small', 'gpuMemory'],
  ['node selector does not match', 'selector'],
  ['affinity does not match', 'affinity'],
  ['excluded by anti-affinity', 'antiAffinity'],
  ['untolerated taint', 'taint'],
  ['security level below the data classification', 'security'],
  ['too small for one task even when empty', 'tooSmall'],
  ['not idle (whole node needed)', 'notIdle'],
  ['insufficient gpus', 'gpus'],
  ['no GPU with enough free share', 'gpuShare'],
  ['insufficient cpu', 'cpu'],
  ['insufficient memory', 'memory'],
  ['insufficient extended resources', 'extended'],
  ["hold another tenant's restricted work (or this restricted job would share them)", 'restricted'],
  ['fit some tasks but the gang needs more', 'gang'],
];

/** One node reason ("12 insufficient gpus") as a sentence. */
function nodeReason(part) {
  const m = /^(\d+) (.+)$/.exec(part.trim());
  if (!m) return part;
  const [, count, text] = m;
  const model = /^GPU model is not (.+)$/.exec(text);
  const known = NODE_REASONS.find(([phrase]) => phrase === text);
  if (!model && !known) return part;
  const reason = model ? t('why.node.gpuModel', { models: model[1] }) : t(`why.node.${known[1]}`);
  return t(Number(count) === 1 ? 'why.nodeCountOne' : 'why.nodeCount', { n: num(Number(count)), reason });
}

/** A placement failure: "0/40 nodes fit (2 of 4 tasks of the gang fit now): 30 insufficient cpu, 10 cordoned". */
function failure(text) {
  if (text === 'no nodes in the pool') return { text: t('why.noNodes') };
  const m = /^(never fits: )?0\/(\d+) nodes (?:fit|could hold it even when empty)(?: \((?:at most )?(\d+) of (\d+) tasks[^)]*\))?(?:: (.*))?$/.exec(text);
  if (!m) return undefined;
  const [, never, total, fitting, tasks, list] = m;
  const head = never ? t('why.never', { total: num(Number(total)) }) : t('why.noFit', { total: num(Number(total)) });
  const gang = fitting ? ` ${t('why.gangPart', { fitting, tasks })}` : '';
  return { text: head + gang, items: list ? list.split(', ').map(nodeReason) : [] };
}

const PATTERNS = [
  [/^waiting for the next scheduling cycle$/, () => t('why.nextCycle')],
  [/^deferred for greener power until (\S+): forecast (\d+) gCO2\/kWh over its run, against (\d+) if it started now \(latest start (\S+)\)$/, (m) => t('why.deferred', { until: dateTime(m[1]), forecast: m[2], now: m[3], latest: dateTime(m[4]) })],
  [/^held by the power budget of (pool|zone) (\S+): (.+)$/, (m) => t('why.powerBudget', { where: m[1] === 'pool' ? t(`pool.${m[2]}`) : `${t('common.zone')} ${m[2]}`, details: m[3] })],
  [/^reserved to start at (\S+) when running jobs reach their walltime \(EASY backfill\)$/, (m) => t('why.reserved', { at: dateTime(m[1]) })],
  [/^held back by EASY backfill: it would delay (\S+), reserved to start at (\S+)$/, (m) => t('why.backfill', { job: m[1], at: dateTime(m[2]) })],
  [/^tenant (\S+) is at its (\S+) quota of (.+)$/, (m) => t('why.quota', { tenant: m[1], pool: t(`pool.${m[2]}`), details: m[3] })],
  [/^placed by the leader of pool (\S+) \((.+)\)$/, (m) => t('why.leader', { pool: t(`pool.${m[1]}`), leader: m[2] })],
];

/**
 * The pending reason as a list of explanations `{ text, items? }`. The scheduler joins a hold (quota, green,
 * backfill) and the placement failure with "; ".
 */
export function explainPending(reason) {
  if (!reason) return [];
  return splitReason(reason).map((part) => {
    for (const [re, say] of PATTERNS) {
      const m = re.exec(part);
      if (m) return { text: say(m) };
    }
    return failure(part) ?? { text: part };
  });
}

/** Splits at "; " between the parts the scheduler joined, not inside a part's own text. */
function splitReason(reason) {
  const parts = [];
  for (const piece of reason.split('; ')) {
    const starts = /^(0\/\d|never fits|no nodes|waiting for|deferred for|held |reserved to|tenant |placed by)/.test(piece);
    if (parts.length === 0 || starts) parts.push(piece);
    else parts[parts.length - 1] += `; ${piece}`;
  }
  return parts;
}
