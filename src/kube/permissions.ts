/**
 * Every Kubernetes API call the bridge makes, as RBAC rules: the one list that `configs/kubernetes/rbac.yaml`
 * must grant, no more and no less (test/kube/manifests.test.ts checks it), and that the README's Kubernetes
 * section describes. test/kube/bridge.test.ts checks the manifest against the calls the bridge actually made. Add a line here whenever the bridge starts calling something new: nothing is granted
 * ahead of use.
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
  { apiGroup: '', resource: 'nodes', verbs: ['list', 'watch'], why: 'node informer: nodes become scheduler nodes' },
  { apiGroup: '', resource: 'pods', verbs: ['list', 'watch', 'delete'], why: 'pod informer; deleting pods of cancelled jobs and of gangs that failed to bind' },
  { apiGroup: '', resource: 'pods/binding', verbs: ['create'], why: 'binding a pod to the node the scheduler chose' },
  { apiGroup: '', resource: 'pods/log', verbs: ['get'], why: 'a task\'s output for `qy log` and GET /v1/jobs/:id/log: the pod\'s log' },
  { apiGroup: '', resource: 'pods/status', verbs: ['patch'], why: 'PodScheduled=False with the pending reason (a JSON merge patch)' },
  { apiGroup: '', resource: 'events', verbs: ['create'], why: 'FailedScheduling and Scheduled events' },
  { apiGroup: '', resource: 'namespaces', verbs: ['list', 'watch'], why: 'namespace informer: tenant and default pool labels' },
];
