import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KUBE_ENV } from '../../src/kube/config';
import { kubePodSchema } from '../../src/kube/kube-types';
import { KUBE_API_PERMISSIONS } from '../../src/kube/permissions';
import { groupPods, jobOfUnit } from '../../src/kube/pod-mapping';
import { kubeNamespaceSchema } from '../../src/kube/kube-types';
import { permissionOf } from './rbac';

const DIR = 'configs/kubernetes';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []));
}

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
const manifests: { file: string; doc: Manifest }[] = yamlFiles(DIR).flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
    return { file, doc: d.toJS() as Manifest };
  }),
);
const ofKind = (kind: string) => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);

test('every manifest parses and names its apiVersion, kind and name', () => {
  expect(manifests.length).toBeGreaterThan(8);
  for (const { file, doc } of manifests) {
    expect(doc.apiVersion, file).toBeTruthy();
    expect(doc.kind, file).toBeTruthy();
    expect(doc.metadata?.name, file).toBeTruthy();
  }
});

test('the permission a request needs, by the API server’s rules (what test/kube/bridge.test.ts checks rbac.yaml against)', () => {
  const cases: [string, string, Record<string, string>, string][] = [
    ['GET', '/api/v1/nodes', {}, '|nodes|list'],
    ['GET', '/api/v1/pods', { watch: 'true', allowWatchBookmarks: 'true' }, '|pods|watch'],
    ['GET', '/api/v1/namespaces', { watch: 'true' }, '|namespaces|watch'],
    ['GET', '/api/v1/namespaces/team-a', {}, '|namespaces|get'],
    ['GET', '/api/v1/namespaces/team-a/pods/p1', {}, '|pods|get'],
    ['DELETE', '/api/v1/namespaces/team-a/pods/p1', {}, '|pods|delete'],
    ['DELETE', '/api/v1/namespaces/team-a/pods', {}, '|pods|deletecollection'],
    ['POST', '/api/v1/namespaces/team-a/pods/p1/binding', {}, '|pods/binding|create'],
    ['PATCH', '/api/v1/namespaces/team-a/pods/p1/status', {}, '|pods/status|patch'],
    ['POST', '/api/v1/namespaces/team-a/events', {}, '|events|create'],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/team-a/leases/l1', {}, 'coordination.k8s.io|leases|update'],
  ];
  for (const [method, path, query, want] of cases) expect(permissionOf({ method, path, query }), `${method} ${path}`).toBe(want);
  expect(() => permissionOf({ method: 'GET', path: '/healthz', query: {} })).toThrow(/not a resource request/);
});

test('the ClusterRole grants exactly the documented list KUBE_API_PERMISSIONS (the calls themselves: test/kube/bridge.test.ts)', () => {
  const [role] = ofKind('ClusterRole') as (Manifest & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] })[];
  const granted = new Set(role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`)))));
  const needed = new Set(KUBE_API_PERMISSIONS.flatMap((p) => p.verbs.map((v) => `${p.apiGroup}|${p.resource}|${v}`)));
  expect([...needed].filter((n) => !granted.has(n))).toEqual([]);
  expect([...granted].filter((g) => !needed.has(g))).toEqual([]);
});

test('the bridge runs as the bound service account, with only known QY_ variables', () => {
  const [binding] = ofKind('ClusterRoleBinding') as (Manifest & { roleRef: { name: string }; subjects: { name: string; namespace: string }[] })[];
  const [deployment] = ofKind('Deployment') as (Manifest & { spec: { replicas: number; template: { spec: { serviceAccountName: string } } } })[];
  expect(binding.roleRef.name).toBe(ofKind('ClusterRole')[0].metadata.name);
  expect(binding.subjects[0]).toEqual({ kind: 'ServiceAccount', name: deployment.spec.template.spec.serviceAccountName, namespace: deployment.metadata.namespace });
  expect(deployment.spec.replicas).toBe(1);
  const known = new Set(Object.values(KUBE_ENV));
  const configured = [...ofKind('ConfigMap').flatMap((c) => Object.keys(c.data as object)), ...ofKind('Secret').flatMap((s) => Object.keys(s.stringData as object))];
  expect(configured.filter((name) => !known.has(name))).toEqual([]);
  expect(configured).toContain('QY_KUBE_TOKEN');
});

test('the example pods make the jobs they say: one pod, and a gang of four', () => {
  const ns = kubeNamespaceSchema.parse(ofKind('Namespace').find((n) => n.metadata.name === 'beijing-batch'));
  const pods = ofKind('Pod').map((p) => kubePodSchema.parse({ ...p, metadata: { ...p.metadata, uid: p.metadata.name } }));
  const { units, waiting } = groupPods(pods);
  expect(waiting).toEqual([]);
  const keys = { schedulerName: 'qingyang-scheduler', poolLabel: 'qingyang.cn/pool', tenantLabel: 'qingyang.cn/tenant', priorityAnnotation: 'qingyang.cn/priority-class', priorityClasses: ['urgent', 'normal', 'batch', 'best-effort'] };
  const jobs = units.map((u) => jobOfUnit(u, ns, keys));
  expect(jobs).toMatchObject([
    { tenant: 'beijing', spec: { pool: 'intelligent', priorityClass: 'batch', resources: { gpus: 2 }, constraints: { nodeSelector: { 'qingyang.cn/gpu-model': 'A800' } } } },
    { tenant: 'beijing', spec: { name: 'beijing-batch/wrf', pool: 'super', tasks: 4, priorityClass: 'urgent', walltimeSeconds: 3600 } },
  ]);
});
