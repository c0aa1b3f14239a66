import type { JetStreamPublisher } from '../store/js-publisher';
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
    for (let delayMs = 100; !this.stopped; delayMs = Math.min(5_000, delayMs * 2)) {
      try {
        // No message id: the scheduler applies a repeated report as a no-op.
        await this.publisher.publish(subjects.status(report.nodeId), payload);
        return;
      } catch (err) {
        this.log.warn({ err: (err as Error).message, jobId: report.jobId, state: report.state }, 'status report not stored yet; retrying');
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
    throw new Error('status publisher stopped');
  }

  stop(): void {
    this.stopped = true;
  }
}
