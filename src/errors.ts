import createError from '@fastify/error';
import { API_ERRORS, type ApiErrorCode } from './protocol';

/**
 * Every error the service can raise, with its stable code and HTTP status (both defined by the protocol, in
 * src/protocol/errors.ts). Routes throw these; one error handler turns `code`, `message` and `statusCode` into
 * the response body.
 */
const apiError = <C extends ApiErrorCode>(code: C) => createError(code, API_ERRORS[code].message, API_ERRORS[code].statusCode);

export const QY_ERR_VALIDATION = apiError('QY_ERR_VALIDATION');
export const QY_ERR_MALFORMED_JSON = apiError('QY_ERR_MALFORMED_JSON');
export const QY_ERR_BODY_TOO_LARGE = apiError('QY_ERR_BODY_TOO_LARGE');
export const QY_ERR_UNSUPPORTED_MEDIA_TYPE = apiError('QY_ERR_UNSUPPORTED_MEDIA_TYPE');
export const QY_ERR_ROUTE_NOT_FOUND = apiError('QY_ERR_ROUTE_NOT_FOUND');
export const QY_ERR_JOB_NOT_FOUND = apiError('QY_ERR_JOB_NOT_FOUND');
export const QY_ERR_NODE_NOT_FOUND = apiError('QY_ERR_NODE_NOT_FOUND');
export const QY_ERR_NODE_NOT_REMOVABLE = apiError('QY_ERR_NODE_NOT_REMOVABLE');
export const QY_ERR_UNSCHEDULABLE = apiError('QY_ERR_UNSCHEDULABLE');
export const QY_ERR_UNKNOWN_PRIORITY_CLASS = apiError('QY_ERR_UNKNOWN_PRIORITY_CLASS');
export const QY_ERR_JOB_FINISHED = apiError('QY_ERR_JOB_FINISHED');
export const QY_ERR_IDEMPOTENCY_KEY_REUSED = apiError('QY_ERR_IDEMPOTENCY_KEY_REUSED');
export const QY_ERR_LOG_UNAVAILABLE = apiError('QY_ERR_LOG_UNAVAILABLE');
export const QY_ERR_AGENT_UNAVAILABLE = apiError('QY_ERR_AGENT_UNAVAILABLE');
export const QY_ERR_UNAUTHENTICATED = apiError('QY_ERR_UNAUTHENTICATED');
export const QY_ERR_FORBIDDEN = apiError('QY_ERR_FORBIDDEN');
export const QY_ERR_QUOTA_EXCEEDED = apiError('QY_ERR_QUOTA_EXCEEDED');
export const QY_ERR_RATE_LIMITED = apiError('QY_ERR_RATE_LIMITED');
export const QY_ERR_TENANT_NOT_FOUND = apiError('QY_ERR_TENANT_NOT_FOUND');
export const QY_ERR_NOT_READY = apiError('QY_ERR_NOT_READY');
/** A standby replica refuses writes; the message and the X-Qy-Leader header say where the leader is. */
export const QY_ERR_NOT_LEADER = apiError('QY_ERR_NOT_LEADER');
export const QY_ERR_STORE_UNAVAILABLE = apiError('QY_ERR_STORE_UNAVAILABLE');
/** The accounting archive could not answer: PostgreSQL is down, restarting, or not migrated yet. */
export const QY_ERR_ARCHIVE_UNAVAILABLE = apiError('QY_ERR_ARCHIVE_UNAVAILABLE');
export const QY_ERR_INTERNAL = apiError('QY_ERR_INTERNAL');
export const QY_ERR_NO_FEASIBLE_SITE = apiError('QY_ERR_NO_FEASIBLE_SITE');
export const QY_ERR_UNKNOWN_SITE = apiError('QY_ERR_UNKNOWN_SITE');
export const QY_ERR_FEDERATION_DISABLED = apiError('QY_ERR_FEDERATION_DISABLED');
export const QY_ERR_SITE_UNAVAILABLE = apiError('QY_ERR_SITE_UNAVAILABLE');
export const QY_ERR_DATASET_NOT_FOUND = apiError('QY_ERR_DATASET_NOT_FOUND');
export const QY_ERR_DATASET_DESTROYED = apiError('QY_ERR_DATASET_DESTROYED');
/** The console's charts: no QY_PROMETHEUS_URL, or Prometheus did not answer as it should. */
export const QY_ERR_PROMETHEUS_NOT_CONFIGURED = apiError('QY_ERR_PROMETHEUS_NOT_CONFIGURED');
export const QY_ERR_PROMETHEUS_UNAVAILABLE = apiError('QY_ERR_PROMETHEUS_UNAVAILABLE');
export const QY_ERR_UNKNOWN_SERIES = apiError('QY_ERR_UNKNOWN_SERIES');
