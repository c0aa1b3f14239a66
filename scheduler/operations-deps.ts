import type { Policy } from '../src/core';
import type { PriceTable } from '../src/billing';
import type { Archive } from '../src/archive';
import type { AuditLog } from '../src/store/audit-log';
import type { Logger } from '../src/telemetry/logger';
import type { SchedulerMetrics } from '../src/telemetry/metrics';
import type { Clock } from '../src/time';
import type { AgentGateway } from './agent-gateway';
import type { SchedulerConfig } from './config';
import type { SchedulerCycle } from './cycle';
import type { GreenSignal } from './green';
import type { JobStateView, JobStore } from './job-store';
import type { LeadershipView } from './leadership';
import type { NodeRegistry } from './nodes';
import type { QuotaWatch } from './quota-watch';
import type { TelemetrySink } from './telemetry-sink';
import type { TenantDirectory } from './tenants';
import type { FederationFile } from '../src/protocol';
import type { DatasetStore } from '../src/store/federation-buckets';
import type { FederationLink } from './federation/link';

/**
 * What the API's operations may read and do: each part of the scheduler through the few members they use.
 * The Scheduler provides it; a test may provide another.
 */
export interface OperationsDeps {
  readonly config: SchedulerConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly policy: Policy;
  readonly tenants: TenantDirectory;
  readonly prices: PriceTable;
  readonly metrics: Pick<SchedulerMetrics, 'jobsSubmitted'>;
  readonly store: JobStateView & Pick<JobStore, 'commit' | 'gate'>;
  readonly leadership: LeadershipView;
  readonly cycle: Pick<SchedulerCycle, 'placeNow' | 'request' | 'retry' | 'pipeline'>;
  readonly telemetry: Pick<TelemetrySink, 'jobEvent'>;
  readonly green: Pick<GreenSignal, 'signalAt' | 'carbonAt' | 'planForecast' | 'forecasterView' | 'source' | 'planner'>;
  readonly registry: NodeRegistry;
  readonly gateway: Pick<AgentGateway, 'requeueJobsOn' | 'requestLog' | 'forgetNode'>;
  readonly quotas: Pick<QuotaWatch, 'put'>;
  readonly audit: AuditLog;
  /** The accounting archive, when configured: reads of jobs, usage and audit records no longer in memory fall through to it. */
  readonly archive: Archive | undefined;
  /** Federation: the link to the other sites and the federation file, when QY_SITE is set. */
  readonly federation: FederationLink | undefined;
  readonly federationFile: FederationFile | undefined;
  /** Dataset records (the federation's buckets, or this site's own). */
  readonly datasetStore: DatasetStore;
  /** State is rebuilt and followed: reads are served. */
  readonly ready: boolean;
  readonly notReadyReason: string;
}
