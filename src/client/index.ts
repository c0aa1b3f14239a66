/**
 * The scheduler's HTTP API client: the one way the CLI, the Kubernetes bridge, the load tools, the benches
 * and the tests call the API. Typed by src/protocol; one leader-following and backoff policy.
 */
export { SchedulerClient, type AuditQuery, type CallOptions, type JobQuery, type SchedulerClientOptions } from './scheduler-client';
export { NO_RETRY, SchedulerApiError, backoffMs, type ApiResponse, type RetryPolicy, type SendOptions, type TransportStats } from './transport';
