import type { PlacementFailure, ReasonCode, ReasonCounts } from './model';

/** Human text for each reason, as it follows a count ("640 GPU model is not H20"). */
const REASON_TEXT: Record<ReasonCode, (failure: PlacementFailure) => string> = {
  'node-cordoned': () => 'cordoned',
  'node-suspect': () => 'suspect (heartbeats missing)',
  'node-down': () => 'down',
  'pool-mismatch': () => 'in another pool',
  'gpu-model-mismatch': (f) => `GPU model is not ${f.gpuModels.join(' or ')}`,
  'no-gpus': () => 'have no GPUs',
  'gpu-memory-too-small': () => 'GPU memory too small',
  'node-selector-mismatch': () => 'node selector does not match',
  'affinity-mismatch': () => 'affinity does not match',
  'anti-affinity-match': () => 'excluded by anti-affinity',
  'untolerated-taint': () => 'untolerated taint',
  'security-level-too-low': () => 'security level below the data classification',
  'node-too-small': () => 'too small for one task even when empty',
  'node-not-idle': () => 'not idle (whole node needed)',
  'insufficient-gpus': () => 'insufficient gpus',
  'insufficient-gpu-share': () => 'no GPU with enough free share',
  'insufficient-cpu': () => 'insufficient cpu',
  'insufficient-memory': () => 'insufficient memory',
  'insufficient-extended': () => 'insufficient extended resources',
  'restricted-isolation': () => "hold another tenant's restricted work (or this restricted job would share them)",
  'gang-too-large': () => 'fit some tasks but the gang needs more',
};

/** Adds `count` nodes to a reason. */
export function addReason(reasons: ReasonCounts, code: ReasonCode, count = 1): void {
  if (count > 0) reasons[code] = (reasons[code] ?? 0) + count;
}

/**
 * The pending reason a user reads, e.g.
 * `0/10000 nodes fit: 9200 insufficient gpus, 640 GPU model is not H20, 160 cordoned`.
 * Reasons are listed by count, largest first, ties by name, so the text is stable.
 */
export function formatFailure(failure: PlacementFailure): string {
  const parts = (Object.entries(failure.reasons) as [ReasonCode, number][])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([code, n]) => `${n} ${REASON_TEXT[code](failure)}`);
  const head = failure.never ? `never fits: 0/${failure.totalNodes} nodes could hold it even when empty` : `0/${failure.totalNodes} nodes fit`;
  const gang =
    failure.tasksFitting === undefined
      ? ''
      : failure.never
        ? ` (at most ${failure.tasksFitting} of ${failure.tasks} tasks fit the whole pool)`
        : ` (${failure.tasksFitting} of ${failure.tasks} tasks of the gang fit now)`;
  if (failure.totalNodes === 0) return 'no nodes in the pool';
  return parts.length > 0 ? `${head}${gang}: ${parts.join(', ')}` : `${head}${gang}`;
}
