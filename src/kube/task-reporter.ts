import type { StatusPublisher } from '../../agents/status-publisher';
import type { TaskState } from '../protocol';

/** What happened to a task, as the bridge reports it. */
export interface TaskOutcome {
  state: TaskState;
  exitCode?: number;
  reason?: string;
}

/** Sends task status reports to the job log the way agents do (`qy.status.<nodeId>`, retried until stored). */
export class TaskReporter {
  constructor(private readonly statuses: StatusPublisher) {}

  async report(nodeId: string, jobId: string, attemptId: string, taskIndex: number, outcome: TaskOutcome): Promise<void> {
    await this.statuses.publish({ type: 'status', nodeId, jobId, attemptId, taskIndex, state: outcome.state, exitCode: outcome.exitCode, reason: outcome.reason, atMs: Date.now() });
  }
}
