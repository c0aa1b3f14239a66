import type { LabelRequirement, Labels } from '../protocol';

/** The label under which a node's zone can be selected, as in Kubernetes. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Whether node labels satisfy one requirement (Kubernetes node-affinity semantics). */
export function matchesRequirement(labels: Labels, req: LabelRequirement): boolean {
  const value = labels[req.key];
  switch (req.operator) {
    case 'In':
      return value !== undefined && req.values.includes(value);
    case 'NotIn':
      return value === undefined || !req.values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || !/^-?\d+$/.test(value)) return false;
      const have = Number(value);
      const bound = Number(req.values[0]);
      return req.operator === 'Gt' ? have > bound : have < bound;
    }
  }
}
