import type { Taint, Toleration } from '../../protocol';
import { pass, reject, type FilterPlugin } from '../framework';

/** Whether a toleration covers a taint (Kubernetes semantics; an empty key with Exists covers all). */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect !== undefined && toleration.effect !== taint.effect) return false;
  if (toleration.key === '') return toleration.operator === 'Exists';
  if (toleration.key !== taint.key) return false;
  return toleration.operator === 'Exists' || toleration.value === taint.value;
}

/** Whether some toleration of the job covers the taint. */
export function isTolerated(tolerations: readonly Toleration[], taint: Taint): boolean {
  return tolerations.some((t) => tolerates(t, taint));
}

/** A node's NoSchedule taints keep away every job that does not tolerate them. */
export const taintToleration: FilterPlugin = {
  name: 'TaintToleration',
  scope: 'static',
  filter(job, node) {
    for (const taint of node.spec.taints) {
      if (taint.effect === 'NoSchedule' && !isTolerated(job.job.constraints.tolerations, taint)) return reject('untolerated-taint');
    }
    return pass();
  },
};
