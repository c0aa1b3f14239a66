import type { JetStreamClient } from '@nats-io/jetstream';
import { subjects, type StatusReport } from '../src/protocol';
import type { Logger } from '../src/telemetry/logger';

/**
 * Sends status reports to the job log and keeps retrying until JetStream stores each one, through NATS
 * outages and scheduler restarts: a report is how a job's end becomes known, so it must not be dropped.
 * The message id makes a retry that did get stored harmless.
 */
export class StatusPublisher {
  private stopped = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly log: Logger,
  ) {}

  async publish(report: StatusReport): Promise<void> {
    const payload = JSON.stringify(report);
    const msgID = `${report.attemptId}/${report.taskIndex}:${report.state}`;
    for (let delayMs = 100; !this.stopped; delayMs = Math.min(5_000, delayMs * 2)) {
      try {
        await this.js.publish(subjects.status(report.nodeId), payload, { msgID, timeout: 5_000 });
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
