/**
 * Every Kubernetes API call the bridge makes, as RBAC rules: the one list that `configs/kubernetes/rbac.yaml`
 * must grant, no more and no less (test/kube/manifests.test.ts checks it), and that the README's Kubernetes
 * section describes. Add a line here whenever the bridge starts calling something new. A few verbs are
 * granted ahead of use, as kube-scheduler's own role does (said in `why`), so a small change of the
 * bridge's calls needs no RBAC change in deployed clusters.
 */
export interface KubeApiPermission {
  /** API group; '' is the core group. */
  apiGroup: string;
  /** Resource, with the subresource after a slash (pods/binding). */
  resource: string;
  verbs: string[];
  /** What the bridge uses it for. */
  why: string;
}

export const KUBE_API_PERMISSIONS: readonly KubeApiPermission[] = [
  { apiGroup: '', resource: 'nodes', verbs: ['get', 'list', 'watch'], why: 'node informer: nodes become scheduler nodes' },
  { apiGroup: '', resource: 'pods', verbs: ['get', 'list', 'watch', 'delete'], why: 'pod informer (list, watch; get for single reads); deleting pods of cancelled jobs and of gangs that failed to bind' },
  { apiGroup: '', resource: 'pods/binding', verbs: ['create'], why: 'binding a pod to the node the scheduler chose' },
  { apiGroup: '', resource: 'pods/status', verbs: ['patch', 'update'], why: 'PodScheduled=False with the pending reason (a JSON merge patch; update granted ahead of use)' },
  { apiGroup: '', resource: 'events', verbs: ['create', 'patch'], why: 'FailedScheduling and Scheduled events (created; patch granted for event series)' },
  { apiGroup: 'events.k8s.io', resource: 'events', verbs: ['create', 'patch'], why: 'not called today: granted so a move to events.k8s.io/v1 needs no RBAC change' },
  { apiGroup: '', resource: 'namespaces', verbs: ['get', 'list', 'watch'], why: 'namespace informer: tenant and default pool labels' },
];
