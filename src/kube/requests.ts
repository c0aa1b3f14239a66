import { cpuMillisOf, wholeUnitsOf } from './quantity';
import type { KubePod } from './kube-types';

/** Resources in the scheduler's units: what a pod asks for, or what a node has. */
export interface KubeResources {
  cpuMillis: number;
  memBytes: number;
  gpus: number;
  /** Extended resources by name (rdma/hca, huawei.com/ascend-910, …), whole units. */
  extended: Record<string, number>;
}

/** The Kubernetes resource name of NVIDIA GPUs; counted as the scheduler's `gpus`. */
const GPU_RESOURCE = 'nvidia.com/gpu';

/** Resource names that are neither CPU, memory nor GPUs and still not extended resources the scheduler places. */
function isIgnoredResource(name: string): boolean {
  return name === 'pods' || name === 'ephemeral-storage' || name === 'storage' || name.startsWith('hugepages-') || name.startsWith('attachable-volumes-');
}

export function emptyResources(): KubeResources {
  return { cpuMillis: 0, memBytes: 0, gpus: 0, extended: {} };
}

/** A Kubernetes ResourceList (`{cpu: "500m", memory: "1Gi", "nvidia.com/gpu": "1"}`) in the scheduler's units. */
export function resourcesOf(list: Record<string, string | number> | null | undefined): KubeResources {
  const out = emptyResources();
  for (const [name, quantity] of Object.entries(list ?? {})) {
    if (name === 'cpu') out.cpuMillis = cpuMillisOf(quantity);
    else if (name === 'memory') out.memBytes = wholeUnitsOf(quantity);
    else if (name === GPU_RESOURCE) out.gpus = wholeUnitsOf(quantity);
    else if (!isIgnoredResource(name)) out.extended[name] = wholeUnitsOf(quantity);
  }
  return out;
}

export function addResources(a: KubeResources, b: KubeResources): KubeResources {
  const extended = { ...a.extended };
  for (const [k, v] of Object.entries(b.extended)) extended[k] = (extended[k] ?? 0) + v;
  return { cpuMillis: a.cpuMillis + b.cpuMillis, memBytes: a.memBytes + b.memBytes, gpus: a.gpus + b.gpus, extended };
}

/** What is left of `a` after `b`, never below zero. */
export function subtractResources(a: KubeResources, b: KubeResources): KubeResources {
  const extended: Record<string, number> = {};
  for (const [k, v] of Object.entries(a.extended)) extended[k] = Math.max(0, v - (b.extended[k] ?? 0));
  return { cpuMillis: Math.max(0, a.cpuMillis - b.cpuMillis), memBytes: Math.max(0, a.memBytes - b.memBytes), gpus: Math.max(0, a.gpus - b.gpus), extended };
}

function maxResources(a: KubeResources, b: KubeResources): KubeResources {
  const extended = { ...a.extended };
  for (const [k, v] of Object.entries(b.extended)) extended[k] = Math.max(extended[k] ?? 0, v);
  return { cpuMillis: Math.max(a.cpuMillis, b.cpuMillis), memBytes: Math.max(a.memBytes, b.memBytes), gpus: Math.max(a.gpus, b.gpus), extended };
}

/** A container's requests; a resource with only a limit is requested at its limit, as the API server defaults it. */
function containerRequests(c: { resources?: { requests?: Record<string, string | number> | null; limits?: Record<string, string | number> | null } | null }): KubeResources {
  return resourcesOf({ ...(c.resources?.limits ?? {}), ...(c.resources?.requests ?? {}) });
}

/**
 * A pod's effective requests as kube-scheduler computes them: the larger of the app containers' sum (plus
 * sidecars, init containers with restartPolicy Always) and each init container (plus the sidecars started
 * before it), plus the pod overhead.
 */
export function podRequests(pod: KubePod): KubeResources {
  let sidecars = emptyResources();
  let initPeak = emptyResources();
  for (const init of pod.spec.initContainers ?? []) {
    const req = containerRequests(init);
    if (init.restartPolicy === 'Always') sidecars = addResources(sidecars, req);
    else initPeak = maxResources(initPeak, addResources(req, sidecars));
  }
  let apps = sidecars;
  for (const c of pod.spec.containers) apps = addResources(apps, containerRequests(c));
  return addResources(maxResources(apps, initPeak), resourcesOf(pod.spec.overhead));
}

/** Equal requests, for the rule that every pod of a gang asks for the same. */
export function sameResources(a: KubeResources, b: KubeResources): boolean {
  const keys = new Set([...Object.keys(a.extended), ...Object.keys(b.extended)]);
  return a.cpuMillis === b.cpuMillis && a.memBytes === b.memBytes && a.gpus === b.gpus && [...keys].every((k) => (a.extended[k] ?? 0) === (b.extended[k] ?? 0));
}

/** `cpu=500m memory=1073741824 …`, for messages. */
export function describeResources(r: KubeResources): string {
  const parts = [`cpuMillis=${r.cpuMillis}`, `memBytes=${r.memBytes}`];
  if (r.gpus) parts.push(`gpus=${r.gpus}`);
  for (const [k, v] of Object.entries(r.extended)) parts.push(`${k}=${v}`);
  return parts.join(' ');
}
