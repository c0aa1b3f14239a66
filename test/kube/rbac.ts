import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { RecordedRequest } from './fake-apiserver';

/** One RBAC permission as `group|resource|verb` ('' is the core group; subresources as `pods/binding`). */
export type Permission = string;

/**
 * The permission a request to the Kubernetes API needs, by the API server's own rules (RequestInfo):
 * `/api/v1/...` is the core group, `/apis/<group>/<version>/...` another; `namespaces/<ns>/` in front of a
 * resource scopes it; GET of a collection is `list` (`watch` with `?watch=true`), of one object `get`; POST
 * `create`, PUT `update`, PATCH `patch`, DELETE `delete` (`deletecollection` on a collection). Written
 * here from those rules, not from the bridge's code, so the two are compared rather than copied.
 */
export function permissionOf(request: Pick<RecordedRequest, 'method' | 'path' | 'query'>): Permission {
  const parts = request.path.split('/').filter(Boolean);
  const [group, rest] = parts[0] === 'api' ? ['', parts.slice(2)] : parts[0] === 'apis' ? [parts[1], parts.slice(3)] : [undefined, []];
  if (group === undefined || rest.length === 0) throw new Error(`not a resource request: ${request.method} ${request.path}`);
  // namespaces/<ns>/<resource>... is a namespaced request; namespaces and namespaces/<name> are the namespaces resource.
  const [resource, name, subresource] = rest[0] === 'namespaces' && rest.length >= 3 ? rest.slice(2) : rest;
  const verbs: Record<string, string> = { GET: name ? 'get' : request.query.watch === 'true' ? 'watch' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' };
  const verb = verbs[request.method];
  if (!verb) throw new Error(`no RBAC verb for ${request.method} ${request.path}`);
  return `${group}|${subresource ? `${resource}/${subresource}` : resource}|${verb}`;
}

/** What the ClusterRole of a manifest file grants, as permissions. */
export function grantedBy(manifestFile: string): Set<Permission> {
  const docs = parseAllDocuments(readFileSync(manifestFile, 'utf8')).map((d) => d.toJS() as { kind: string; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] });
  const roles = docs.filter((d) => d.kind === 'ClusterRole');
  if (roles.length !== 1) throw new Error(`${manifestFile}: expected one ClusterRole, found ${roles.length}`);
  return new Set(roles[0].rules!.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`)))));
}
