import { publishUntilStored, type JetStreamPublisher } from '../store/js-publisher';
import { subjects, type StatusReport } from '../protocol';
import type { Logger } from '../telemetry/logger';

/**
 * Sends status reports to the job log and keeps retrying until JetStream stores each one, through NATS
 * outages and scheduler restarts: a report is how a job's end becomes known, so it must not be dropped.
 * A retry of a report that did get stored is harmless: the scheduler applies repeated reports as no-ops.
 */
export class StatusPublisher {
  private stopped = false;

  constructor(
    private readonly publisher: JetStreamPublisher,
    private readonly log: Logger,
  ) {}

  async publish(report: StatusReport): Promise<void> {
    const payload = JSON.stringify(report);
    // No message id: the scheduler applies a repeated report as a no-op.
    const stored = await publishUntilStored(this.publisher, subjects.status(report.nodeId), () => (this.stopped ? undefined : payload), {
      firstDelayMs: 100,
      maxDelayMs: 5_000,
      onFailure: (err) => this.log.warn({ err: err.message, jobId: report.jobId, state: report.state }, 'status report not stored yet; retrying'),
    });
    if (!stored) throw new Error('status publisher stopped');
  }

  stop(): void {
    this.stopped = true;
  }
}
