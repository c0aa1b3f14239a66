/**
 * Every NATS stream, bucket and subject of the system, named once. Call sites build subjects with these
 * functions, never by concatenation, so a rename happens here and nowhere else.
 *
 * | subject | kind | who publishes | what |
 * |---|---|---|---|
 * | `qy.jobs.<jobId>.<event>` | stream QY_JOBS | scheduler | job submissions and state events |
 * | `qy.status.<nodeId>` | stream QY_JOBS | agent | task status reports (running, succeeded, failed, …) |
 * | `qy.term.<pool>` | stream QY_JOBS | scheduler | a replica became a pool's leader: the fence against a deposed leader's late writes |
 * | `qy.assign.<agentId>.<nodeId>` | stream QY_ASSIGN (work queue) | scheduler | assignments and cancels for a node |
 * | `qy.heartbeat.<nodeId>` | core NATS | agent | liveness and live metrics, every second |
 * | `qy.register.<nodeId>` | core NATS request/reply | agent → scheduler | node registration |
 * | `qy.log.<nodeId>` | core NATS request/reply | scheduler → agent | the tail of a task's output |
 * | `qy.audit` | stream QY_AUDIT | scheduler | hash-chained audit records, in blocks |
 * | KV `qy-nodes` | JetStream KV | scheduler | registered nodes and their cordon/drain flags |
 * | KV `qy-quotas` | JetStream KV | scheduler | tenant quotas set by operators at run time |
 * | KV `qy-leases` | JetStream KV | scheduler | the leadership lease of each pool (key `scheduler-<pool>`), renewed by compare-and-set |
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
} as const;

/** The durable consumer through which an agent receives its nodes' work. */
export function agentConsumerName(agentId: string): string {
  return `agent-${agentId}`;
}

/** The node id is the last token of status, heartbeat, register and log subjects. */
export function nodeIdOfSubject(subject: string): string {
  return subject.slice(subject.lastIndexOf('.') + 1);
}
