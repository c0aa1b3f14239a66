import type { FilterPlugin } from '../framework';
import { fitsResources } from './fits-resources';
import { gpuModel } from './gpu-model';
import { nodeAffinity } from './node-affinity';
import { nodeSelector } from './node-selector';
import { nodeSize } from './node-size';
import { nodeState } from './node-state';
import { poolMatch } from './pool';
import { securityLevel } from './security-level';
import { taintToleration } from './taint-toleration';
import { tenantIsolation } from './tenant-isolation';

export { fitsResources, gpuModel, nodeAffinity, nodeSelector, nodeSize, nodeState, poolMatch, securityLevel, taintToleration, tenantIsolation };
export { isTolerated, tolerates } from './taint-toleration';

/**
 * Filters in the order they run. The first that rejects a node names its reason, so the order decides
 * which reason a node is counted under: lifecycle state first, then static attributes, then free resources,
 * then sharing rules. The indexed path checks candidates in the same order (see dynamicVerdict).
 */
export const FILTERS: readonly FilterPlugin[] = [
  nodeState,
  poolMatch,
  gpuModel,
  nodeSelector,
  nodeAffinity,
  taintToleration,
  securityLevel,
  nodeSize,
  fitsResources,
  tenantIsolation,
];

/** The filters that depend only on a node group's shared attributes. */
export const STATIC_FILTERS = FILTERS.filter((f) => f.scope === 'static');
