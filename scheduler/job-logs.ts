import { QY_ERR_AGENT_UNAVAILABLE, QY_ERR_LOG_UNAVAILABLE } from '../src/errors';
import type { LogReply, LogRequest } from '../src/protocol';
import type { AgentGateway } from './agent-gateway';
import type { FoundJob } from './history-reads';
import type { NodeRegistry } from './nodes';

/** The tail of a task's output (`GET /v1/jobs/:id/log`). */
export interface JobLogTail {
  jobId: string;
  attemptId: string;
  taskIndex: number;
  nodeId: string;
  text: string;
  truncated: boolean;
}

/** What fetching an output needs: the agents, and which nodes are still registered. */
export interface JobLogDeps {
  readonly gateway: Pick<AgentGateway, 'requestLog'>;
  readonly registry: Pick<NodeRegistry, 'entries'>;
}

/**
 * The tail of a task's output, asked from the agent of the job's last attempt; the scheduler keeps no output.
 * A job in memory whose agent does not answer is 503 QY_ERR_AGENT_UNAVAILABLE (try again). A job that has
 * left memory is asked all the same (agents keep outputs for a while); when its node is gone or no longer
 * has the output, the answer is 404 QY_ERR_LOG_UNAVAILABLE saying that the job is only in the archive.
 */
export async function taskOutput(found: FoundJob, taskIndex: number, maxBytes: number, deps: JobLogDeps): Promise<JobLogTail> {
  if (found.where === 'archive') {
    const view = found.archived.view;
    const jobId = view.id;
    const nodeId = view.placement?.[taskIndex]?.nodeId;
    if (!view.attemptId || !view.placement) throw new QY_ERR_LOG_UNAVAILABLE(jobId, `it ended (${view.state}) without being placed`);
    if (nodeId === undefined) throw new QY_ERR_LOG_UNAVAILABLE(jobId, `it has no task ${taskIndex}`);
    const ended = `it ended at ${view.finishedAt} and is only in the archive now`;
    if (!deps.registry.entries.has(nodeId)) throw new QY_ERR_LOG_UNAVAILABLE(jobId, `${ended}; its node ${nodeId} is no longer registered`);
    return ask(deps, { jobId, attemptId: view.attemptId, taskIndex, maxBytes }, nodeId, (why, silent) => new QY_ERR_LOG_UNAVAILABLE(jobId, `${ended}; the agent of node ${nodeId} ${silent ? 'did not answer' : 'no longer has it'}: ${why}`));
  }
  const job = found.record;
  const attempt = job.current ?? job.attempts[job.attempts.length - 1];
  if (!attempt) throw new QY_ERR_LOG_UNAVAILABLE(job.id, 'it has not been placed yet');
  const task = attempt.tasks[taskIndex];
  if (!task) throw new QY_ERR_LOG_UNAVAILABLE(job.id, `it has no task ${taskIndex}`);
  const nodeId = task.placement.nodeId;
  return ask(deps, { jobId: job.id, attemptId: attempt.attemptId, taskIndex, maxBytes }, nodeId, (why, silent) => (silent ? new QY_ERR_AGENT_UNAVAILABLE(nodeId, why) : new QY_ERR_LOG_UNAVAILABLE(job.id, why)));
}

/** Asks a node's agent; `refusal` makes the error when it does not answer (`silent`) or has no such output. */
async function ask(deps: JobLogDeps, request: LogRequest, nodeId: string, refusal: (why: string, silent: boolean) => Error): Promise<JobLogTail> {
  let reply: LogReply;
  try {
    reply = await deps.gateway.requestLog(nodeId, request);
  } catch (err) {
    throw refusal((err as Error).message, true);
  }
  if (!reply.ok) throw refusal(reply.message, false);
  return { jobId: request.jobId, attemptId: request.attemptId, taskIndex: request.taskIndex, nodeId, text: reply.text, truncated: reply.truncated };
}
