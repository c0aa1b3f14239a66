import createError from '@fastify/error';

/**
 * Every error the service can raise, with its stable code and HTTP status. Routes throw these; one error
 * handler turns `code`, `message` and `statusCode` into the response body.
 */
export const QY_ERR_VALIDATION = createError('QY_ERR_VALIDATION', 'Invalid request: %s', 400);
export const QY_ERR_MALFORMED_JSON = createError('QY_ERR_MALFORMED_JSON', 'The body is not valid JSON: %s', 400);
export const QY_ERR_BODY_TOO_LARGE = createError('QY_ERR_BODY_TOO_LARGE', 'The body is larger than %s bytes', 413);
export const QY_ERR_UNSUPPORTED_MEDIA_TYPE = createError('QY_ERR_UNSUPPORTED_MEDIA_TYPE', 'Content type %s is not supported; send application/json', 415);
export const QY_ERR_ROUTE_NOT_FOUND = createError('QY_ERR_ROUTE_NOT_FOUND', 'No route %s %s', 404);
export const QY_ERR_JOB_NOT_FOUND = createError('QY_ERR_JOB_NOT_FOUND', 'Job %s not found', 404);
export const QY_ERR_NODE_NOT_FOUND = createError('QY_ERR_NODE_NOT_FOUND', 'Node %s not found', 404);
export const QY_ERR_UNSCHEDULABLE = createError('QY_ERR_UNSCHEDULABLE', 'The job can never run in pool %s: %s', 422);
export const QY_ERR_UNKNOWN_PRIORITY_CLASS = createError('QY_ERR_UNKNOWN_PRIORITY_CLASS', 'priorityClass: unknown priority class %s (known: %s)', 400);
export const QY_ERR_JOB_FINISHED = createError('QY_ERR_JOB_FINISHED', 'Job %s has already finished (%s)', 409);
export const QY_ERR_IDEMPOTENCY_KEY_REUSED = createError('QY_ERR_IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key %s was already used for a different job body', 409);
export const QY_ERR_LOG_UNAVAILABLE = createError('QY_ERR_LOG_UNAVAILABLE', 'No log for job %s: %s', 404);
export const QY_ERR_AGENT_UNAVAILABLE = createError('QY_ERR_AGENT_UNAVAILABLE', 'The agent of node %s did not answer: %s', 503);
export const QY_ERR_UNAUTHENTICATED = createError('QY_ERR_UNAUTHENTICATED', 'Authentication required: %s', 401);
export const QY_ERR_FORBIDDEN = createError('QY_ERR_FORBIDDEN', 'Forbidden: %s', 403);
export const QY_ERR_QUOTA_EXCEEDED = createError('QY_ERR_QUOTA_EXCEEDED', 'Tenant %s is over its %s quota', 429);
export const QY_ERR_RATE_LIMITED = createError('QY_ERR_RATE_LIMITED', 'Too many requests from %s: at most %s per second', 429);
export const QY_ERR_TENANT_NOT_FOUND = createError('QY_ERR_TENANT_NOT_FOUND', 'Tenant %s not found', 404);
export const QY_ERR_NOT_READY = createError('QY_ERR_NOT_READY', 'The scheduler is not ready: %s', 503);
/** A standby replica refuses writes; the message and the X-Qy-Leader header say where the leader is. */
export const QY_ERR_NOT_LEADER = createError('QY_ERR_NOT_LEADER', 'This replica is a standby; send writes to the leader: %s', 503);
export const QY_ERR_STORE_UNAVAILABLE = createError('QY_ERR_STORE_UNAVAILABLE', 'The job store (NATS JetStream) is unavailable: %s', 503);
export const QY_ERR_INTERNAL = createError('QY_ERR_INTERNAL', 'Internal error: %s', 500);
