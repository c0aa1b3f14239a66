import { createHash } from 'node:crypto';
import { MAX_JOB_SECONDS, dataClassSchema, jobSpecSchema, labelKeySchema, labelValueSchema, type JobSpecInput, type Pool, type Toleration } from '../protocol';
import { isTerminalPhase, podKey, type KubeNamespace, type KubePod } from './kube-types';
import { validLabels } from './node-mapping';
import { describeResources, podRequests, sameResources } from './requests';

/** How pods and namespaces say tenant, pool and priority; from the bridge configuration. */
export interface PodMappingKeys {
  schedulerName: string;
  poolLabel: string;
  tenantLabel: string;
  defaultTenant?: string;
  priorityAnnotation: string;
  /** Priority class names the scheduler knows: a matching spec.priorityClassName is used. */
  priorityClasses: string[];
}

/** Pod annotations the bridge reads (besides the configurable ones). */
const ANNOTATIONS = {
  podGroup: 'qingyang.cn/pod-group',
  minMember: 'qingyang.cn/min-member',
  dataClass: 'qingyang.cn/data-class',
  /** Volcano's group annotation and the coscheduling plugin's group label, accepted as the group name. */
  volcanoGroup: 'scheduling.k8s.io/group-name',
  coschedulingGroup: 'pod-group.scheduling.sigs.k8s.io',
} as const;

/** A gang a pod belongs to. */
export interface GangRef {
  namespace: string;
  name: string;
  minMember: number;
}

/** Whether the pod is ours: our scheduler name. */
export function isOurPod(pod: KubePod, schedulerName: string): boolean {
  return pod.spec.schedulerName === schedulerName;
}

/** The gang of a pod, from its annotations; `error` when the group is named but its size is not. */
function gangOf(pod: KubePod): GangRef | { error: string } | undefined {
  const a = pod.metadata.annotations;
  const l = pod.metadata.labels;
  const name = a[ANNOTATIONS.podGroup] ?? a[ANNOTATIONS.volcanoGroup] ?? l[ANNOTATIONS.coschedulingGroup] ?? a[ANNOTATIONS.coschedulingGroup];
  if (name === undefined) return undefined;
  const raw = a[ANNOTATIONS.minMember];
  const minMember = Number(raw);
  if (raw === undefined || !Number.isInteger(minMember) || minMember < 1) return { error: `pod group ${name} needs a ${ANNOTATIONS.minMember} annotation with a positive integer` };
  return { namespace: pod.metadata.namespace, name, minMember };
}

/** A set of pods that becomes one job: one pod, or a gang with all its members present. */
export interface PodUnit {
  /** Idempotency-Key of the submission: a bridge restart submits the same unit with the same key. */
  key: string;
  /** Pods by task index (a gang's sorted by name). */
  pods: KubePod[];
  gang?: GangRef;
}

/** Pods that do not (yet) make a job, and why: shown on the pods as PodScheduled=False. */
export interface WaitingPods {
  pods: KubePod[];
  reason: 'WaitingForGang' | 'Unschedulable';
  message: string;
}

/**
 * Groups our unfinished pods into units: each single pod is one; a gang is one once `minMember` of its
 * pods exist (the first `minMember` by name; further members are told the group is complete). Bound pods
 * are grouped too, so a restarted bridge finds their jobs again through the same idempotency keys.
 */
export function groupPods(pods: KubePod[]): { units: PodUnit[]; waiting: WaitingPods[] } {
  const units: PodUnit[] = [];
  const waiting: WaitingPods[] = [];
  const gangs = new Map<string, { ref: GangRef; pods: KubePod[] }>();
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const gang = gangOf(pod);
    if (gang === undefined) {
      if (!isTerminalPhase(pod.status.phase)) units.push({ key: `kube-pod-${pod.metadata.uid}`, pods: [pod] });
    }
    else if ('error' in gang) waiting.push({ pods: [pod], reason: 'Unschedulable', message: gang.error });
    else {
      const id = `${gang.namespace}/${gang.name}`;
      const entry = gangs.get(id) ?? { ref: gang, pods: [] };
      entry.pods.push(pod);
      gangs.set(id, entry);
    }
  }
  for (const { ref, pods: all } of gangs.values()) {
    // A member that finished without ever being bound (deleted by its controller's policy, say) is not waited for.
    const members = all.filter((p) => p.spec.nodeName || !isTerminalPhase(p.status.phase));
    members.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    if (members.length < ref.minMember) {
      waiting.push({ pods: members, reason: 'WaitingForGang', message: `pod group ${ref.name} has ${members.length} of ${ref.minMember} pods` });
      continue;
    }
    const chosen = members.slice(0, ref.minMember);
    // Finished members still count (the gang's key stays the same after a restart); a finished gang is done.
    if (chosen.every((p) => isTerminalPhase(p.status.phase))) continue;
    units.push({ key: gangKey(chosen), pods: chosen, gang: ref });
    const extra = members.slice(ref.minMember).filter((p) => !p.spec.nodeName);
    if (extra.length > 0) waiting.push({ pods: extra, reason: 'Unschedulable', message: `pod group ${ref.name} already has its ${ref.minMember} members; this pod is not part of the gang` });
  }
  return { units, waiting };
}

/** A gang's key: a hash of its members' UIDs, so a recreated gang is a new job. */
function gangKey(pods: KubePod[]): string {
  const hash = createHash('sha256').update(pods.map((p) => p.metadata.uid).join(',')).digest('hex').slice(0, 32);
  return `kube-gang-${hash}`;
}

/**
 * The job of a unit and the tenant it is submitted for, or why it cannot be one. Resources are the pods'
 * effective requests (a request of 0 CPU becomes 1 millicore: the scheduler wants a positive CPU request).
 */
export function jobOfUnit(unit: PodUnit, namespace: KubeNamespace | undefined, keys: PodMappingKeys): { tenant: string; spec: JobSpecInput } | { error: string } {
  const first = unit.pods[0];
  const nsLabels = namespace?.metadata.labels ?? {};
  const tenant = nsLabels[keys.tenantLabel] ?? keys.defaultTenant;
  if (!tenant) return { error: `namespace ${first.metadata.namespace} has no ${keys.tenantLabel} label naming its tenant` };
  const pool = (first.metadata.labels[keys.poolLabel] ?? first.metadata.annotations[keys.poolLabel] ?? nsLabels[keys.poolLabel]) as Pool | undefined;
  if (!pool) return { error: `pod ${podKey(first)} has no ${keys.poolLabel} label or annotation, nor does its namespace` };
  const requests = podRequests(first);
  for (const pod of unit.pods.slice(1)) {
    const other = podRequests(pod);
    if (!sameResources(requests, other)) {
      return { error: `pods of group ${unit.gang?.name} must request the same resources: ${first.metadata.name} asks ${describeResources(requests)}, ${pod.metadata.name} asks ${describeResources(other)}` };
    }
  }
  const annotated = first.metadata.annotations[keys.priorityAnnotation];
  const fromSpec = first.spec.priorityClassName && keys.priorityClasses.includes(first.spec.priorityClassName) ? first.spec.priorityClassName : undefined;
  const dataClass = dataClassSchema.safeParse(first.metadata.annotations[ANNOTATIONS.dataClass]);
  const spec: JobSpecInput = {
    name: (unit.gang ? `${unit.gang.namespace}/${unit.gang.name}` : podKey(first)).slice(0, 128),
    pool,
    priorityClass: annotated ?? fromSpec,
    tasks: unit.pods.length,
    resources: { cpuMillis: Math.max(1, requests.cpuMillis), memBytes: requests.memBytes, gpus: requests.gpus, extended: requests.extended },
    walltimeSeconds: first.spec.activeDeadlineSeconds ? Math.min(MAX_JOB_SECONDS, first.spec.activeDeadlineSeconds) : undefined,
    constraints: { nodeSelector: validLabels(first.spec.nodeSelector ?? {}), tolerations: tolerationsOf(first) },
    dataClass: dataClass.success ? dataClass.data : undefined,
  };
  if (spec.priorityClass === undefined) delete spec.priorityClass;
  if (spec.walltimeSeconds === undefined) delete spec.walltimeSeconds;
  if (spec.dataClass === undefined) delete spec.dataClass;
  const parsed = jobSpecSchema.safeParse(spec);
  if (!parsed.success) return { error: `pod ${podKey(first)} does not make a valid job: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  return { tenant, spec };
}

/** The pod's tolerations the scheduler understands (NoExecute tolerates as NoSchedule, as node taints map). */
function tolerationsOf(pod: KubePod): Toleration[] {
  const out: Toleration[] = [];
  for (const t of pod.spec.tolerations ?? []) {
    const key = t.key ?? '';
    if (key.startsWith('node.kubernetes.io/')) continue;
    if (key !== '' && !labelKeySchema.safeParse(key).success) continue;
    if (!labelValueSchema.safeParse(t.value ?? '').success) continue;
    const effect = t.effect === 'PreferNoSchedule' ? 'PreferNoSchedule' : t.effect ? 'NoSchedule' : undefined;
    out.push({ key, operator: t.operator === 'Exists' ? 'Exists' : 'Equal', value: t.value ?? '', ...(effect ? { effect } : {}) });
  }
  return out.slice(0, 32);
}
