/**
 * Every NATS stream, bucket and subject of the system, named once. Call sites build subjects with these
 * functions, never by concatenation, so a rename happens here and nowhere else. What each one carries,
 * who sends it to whom: NATS_NAMES (src/protocol/nats-names.ts), from which the README's table is generated.
 */

/** Stream and bucket names. */
export const STREAMS = {
  /** The durable job log: submissions, scheduler decisions and agents' status reports, in one order. */
  jobs: 'QY_JOBS',
  /** Work for the agents: assignments and cancels per node, removed once the agent acknowledges them. */
  assign: 'QY_ASSIGN',
  /** The hash-chained audit log of tenant and operator actions. */
  audit: 'QY_AUDIT',
} as const;

export const KV_BUCKETS = {
  nodes: 'qy-nodes',
  quotas: 'qy-quotas',
  leases: 'qy-leases',
  datasets: 'qy-datasets',
  /** The green signal observed over the last days (key `history`): a restarted scheduler's forecaster starts warm. */
  green: 'qy-green',
} as const;

/** Federation buckets: one of each per site, held in that site's cluster. */
export const fedBuckets = {
  claims: (site: string) => `qy-fed-claims-${site}`,
  datasets: (site: string) => `qy-fed-datasets-${site}`,
} as const;

/** Federation subjects (in the federation account, crossing the gateways). */
export const fedSubjects = {
  summary: (site: string) => `qy.fed.summary.${site}`,
  allSummaries: 'qy.fed.summary.*',
  submit: (site: string) => `qy.fed.site.${site}.submit`,
  job: (site: string) => `qy.fed.site.${site}.job`,
} as const;

/** JetStream object stores. */
export const OBJECT_STORES = {
  /** Snapshots of the scheduler's state: a rebuild loads the newest and replays only the log after it. */
  snapshots: 'qy-snapshots',
} as const;

/** Job event names, the last token of a job event subject. */
export type JobEventName = 'submitted' | 'placed' | 'requeued' | 'cancel-requested' | 'preempted' | 'metered';

export const subjects = {
  /** One event of one job. */
  jobEvent: (jobId: string, event: JobEventName) => `qy.jobs.${jobId}.${event}`,
  /** Every job event (the QY_JOBS stream's first subject filter). */
  allJobEvents: 'qy.jobs.>',
  /** Status reports of one node's tasks. */
  status: (nodeId: string) => `qy.status.${nodeId}`,
  /** Every status report. */
  allStatus: 'qy.status.>',
  /** Leadership term markers of a pool in the job log. */
  term: (pool: string) => `qy.term.${pool}`,
  /** Every term marker (the QY_JOBS stream's third subject filter). */
  allTerms: 'qy.term.>',
  /** Assignments and cancels for one node, served by its agent. */
  assign: (agentId: string, nodeId: string) => `qy.assign.${agentId}.${nodeId}`,
  /** Everything for the nodes of one agent (its durable consumer's filter). */
  assignForAgent: (agentId: string) => `qy.assign.${agentId}.>`,
  /** Every assignment (the QY_ASSIGN stream's subject filter). */
  allAssign: 'qy.assign.>',
  heartbeat: (nodeId: string) => `qy.heartbeat.${nodeId}`,
  allHeartbeats: 'qy.heartbeat.>',
  register: (nodeId: string) => `qy.register.${nodeId}`,
  allRegister: 'qy.register.>',
  log: (nodeId: string) => `qy.log.${nodeId}`,
  /** Blocks of audit records. */
  audit: 'qy.audit',
  /** Where an operator's feed may publish grid carbon readings (set QY_CARBON_SUBJECT to it, or to another). */
  carbon: 'qy.green.carbon',
} as const;

/** Whether a job-log message is a leadership term marker (`qy.term.<pool>`). */
export function isTermSubject(subject: string): boolean {
  return subject.startsWith(subjects.term(''));
}

/** Whether a job-log message is an agent's task status report (`qy.status.<nodeId>`). */
export function isStatusSubject(subject: string): boolean {
  return subject.startsWith(subjects.status(''));
}

/** The durable consumer through which an agent receives its nodes' work. */
export function agentConsumerName(agentId: string): string {
  return `agent-${agentId}`;
}

/** The node id is the last token of status, heartbeat, register and log subjects. */
export function nodeIdOfSubject(subject: string): string {
  return subject.slice(subject.lastIndexOf('.') + 1);
}
