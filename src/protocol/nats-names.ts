import { agentWorkSchema, jobEventSchema, TASK_STATES } from './messages';
import { KV_BUCKETS, OBJECT_STORES, STREAMS, agentConsumerName, fedBuckets, fedSubjects, subjects, type JobEventName } from './subjects';

/** One NATS name: a subject (with <placeholders>), a bucket or an object store; what carries it and what it carries. */
export interface NatsName {
  name: string;
  kind: string;
  /** Who sends to whom, or who writes it. */
  route: string;
  what: string;
}

const list = (names: readonly string[]) => names.map((n) => `\`${n}\``).join(', ');
const JOB_EVENTS = jobEventSchema.options.map((o) => o.shape.type.value);
const WORK_TYPES = agentWorkSchema.options.map((o) => o.shape.type.value);

/**
 * Every subject, bucket and object store of the system with what it is for: the README's NATS table is
 * generated from this list (npm run docs:gen), and the names come from the builders in subjects.ts, the
 * event and message types from the wire shapes, so none of them is written twice.
 */
export const NATS_NAMES: readonly NatsName[] = [
  { name: subjects.jobEvent('<jobId>', '<event>' as JobEventName), kind: `stream \`${STREAMS.jobs}\``, route: 'scheduler', what: `job events, one per decision: ${list(JOB_EVENTS)} (\`submitted\` carries the first placement when there was room at once; \`metered\`: what a task used, energy with PUE and carbon, logged once per task)` },
  { name: subjects.status('<nodeId>'), kind: `stream \`${STREAMS.jobs}\``, route: 'agent → scheduler', what: `task reports: ${list(TASK_STATES)}` },
  { name: subjects.term('<pool>'), kind: `stream \`${STREAMS.jobs}\``, route: 'scheduler', what: "a replica became a pool's leader: its term marker, the fence against a deposed leader's late writes" },
  { name: subjects.assign('<agentId>', '<nodeId>'), kind: `stream \`${STREAMS.assign}\` (work queue; durable consumer \`${agentConsumerName('<agentId>')}\`)`, route: 'scheduler → agent', what: `${list(WORK_TYPES)}: tasks with GPU indices, command, env and walltime, or a stop` },
  { name: subjects.heartbeat('<nodeId>'), kind: 'core NATS', route: 'agent → scheduler', what: 'liveness and live metrics, with the tasks running' },
  { name: subjects.register('<nodeId>'), kind: 'core request/reply', route: 'agent → scheduler', what: 'node registration (agents and the Kubernetes bridge, through NodeLink); the reply sets the heartbeat interval and tells the down threshold' },
  { name: subjects.log('<nodeId>'), kind: 'core request/reply', route: 'scheduler → agent', what: "the tail of a task's output" },
  { name: subjects.carbon, kind: 'core NATS (when `QY_CARBON_SUBJECT` names it)', route: "operator's feed → scheduler", what: 'grid carbon readings `{"gPerKwh","atMs"?}` (or a provider\'s answer as `QY_CARBON_URL` takes it): the live green signal while fresher than `QY_CARBON_STALE_MS`' },
  { name: subjects.audit, kind: `stream \`${STREAMS.audit}\``, route: 'scheduler', what: 'blocks of hash-chained audit records' },
  { name: `KV ${KV_BUCKETS.nodes}`, kind: 'JetStream KV', route: 'scheduler', what: 'registered nodes with their cordon and drain flags' },
  { name: `KV ${KV_BUCKETS.quotas}`, kind: 'JetStream KV', route: 'scheduler', what: 'tenant quotas set by operators at run time' },
  { name: `KV ${KV_BUCKETS.leases}`, kind: 'JetStream KV', route: 'scheduler', what: 'the leadership lease of each pool (key `scheduler-<pool>`: holder, address, term), renewed by compare-and-set' },
  { name: `objects ${OBJECT_STORES.snapshots}`, kind: 'JetStream object store', route: 'scheduler', what: "snapshots of the scheduler's state: a rebuild loads the newest and replays only the log after it" },
  { name: `KV ${KV_BUCKETS.green}`, kind: 'JetStream KV', route: 'scheduler (the leader of `general`)', what: 'the green signal observed over the last 8 days (key `history`): a scheduler that starts loads it, so its forecaster and the errors deferral is held to start warm' },
  { name: `KV ${KV_BUCKETS.datasets}`, kind: 'JetStream KV', route: 'scheduler', what: 'dataset records with their lineage (a lone site)' },
  { name: fedSubjects.summary('<site>'), kind: 'core NATS, account `QY_FED`', route: 'scheduler → other sites', what: "a site's capacity and queue, every `QY_FEDERATION_SUMMARY_INTERVAL_MS`" },
  { name: fedSubjects.submit('<site>'), kind: 'core request/reply, `QY_FED`', route: 'home → executor', what: 'run a job routed here (answered by the leader of its pool)' },
  { name: fedSubjects.job('<site>'), kind: 'core request/reply, `QY_FED`', route: 'home → executor', what: 'status, cancel and log of a job routed away' },
  { name: `KV ${fedBuckets.claims('<site>')}`, kind: 'JetStream KV, `QY_FED`', route: 'home; executor by compare-and-set', what: 'which site runs each job the home routed away' },
  { name: `KV ${fedBuckets.datasets('<site>')}`, kind: 'JetStream KV, `QY_FED`', route: 'scheduler', what: 'dataset records registered at the site, with lineage' },
];
