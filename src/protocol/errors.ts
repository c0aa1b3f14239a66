/**
 * Every error code of the system, owned here as the wire facts they are: the API's errors with their HTTP
 * status and message (src/errors.ts makes them throwable for the routes), the codes of a refused node
 * registration (a NATS reply), and the codes the API client gives when there is no answer to take one from.
 */

/** The API's errors: `{"code", "message", "statusCode"}` bodies; `%s` in a message is filled in where raised. */
export const API_ERRORS = {
  QY_ERR_VALIDATION: { statusCode: 400, message: 'Invalid request: %s' },
  QY_ERR_MALFORMED_JSON: { statusCode: 400, message: 'The body is not valid JSON: %s' },
  QY_ERR_BODY_TOO_LARGE: { statusCode: 413, message: 'The body is larger than %s bytes' },
  QY_ERR_UNSUPPORTED_MEDIA_TYPE: { statusCode: 415, message: 'Content type %s is not supported; send application/json' },
  QY_ERR_ROUTE_NOT_FOUND: { statusCode: 404, message: 'No route %s %s' },
  QY_ERR_JOB_NOT_FOUND: { statusCode: 404, message: 'Job %s not found' },
  QY_ERR_NODE_NOT_FOUND: { statusCode: 404, message: 'Node %s not found' },
  /** DELETE /v1/nodes/:id of a node that is not down, or still has tasks placed on it. */
  QY_ERR_NODE_NOT_REMOVABLE: { statusCode: 409, message: 'Node %s cannot be removed: %s' },
  QY_ERR_UNSCHEDULABLE: { statusCode: 422, message: 'The job can never run in pool %s: %s' },
  QY_ERR_UNKNOWN_PRIORITY_CLASS: { statusCode: 400, message: 'priorityClass: unknown priority class %s (known: %s)' },
  QY_ERR_JOB_FINISHED: { statusCode: 409, message: 'Job %s has already finished (%s)' },
  QY_ERR_IDEMPOTENCY_KEY_REUSED: { statusCode: 409, message: 'Idempotency-Key %s was already used for a different job body' },
  QY_ERR_LOG_UNAVAILABLE: { statusCode: 404, message: 'No log for job %s: %s' },
  QY_ERR_AGENT_UNAVAILABLE: { statusCode: 503, message: 'The agent of node %s did not answer: %s' },
  QY_ERR_UNAUTHENTICATED: { statusCode: 401, message: 'Authentication required: %s' },
  QY_ERR_FORBIDDEN: { statusCode: 403, message: 'Forbidden: %s' },
  QY_ERR_QUOTA_EXCEEDED: { statusCode: 429, message: 'Tenant %s is over its %s quota' },
  QY_ERR_RATE_LIMITED: { statusCode: 429, message: 'Too many requests from %s: at most %s per second' },
  QY_ERR_TENANT_NOT_FOUND: { statusCode: 404, message: 'Tenant %s not found' },
  QY_ERR_NOT_READY: { statusCode: 503, message: 'The scheduler is not ready: %s' },
  /** A standby replica refuses writes; the message and the X-Qy-Leader header say where the leader is. */
  QY_ERR_NOT_LEADER: { statusCode: 503, message: 'This replica is a standby; send writes to the leader: %s' },
  QY_ERR_STORE_UNAVAILABLE: { statusCode: 503, message: 'The job store (NATS JetStream) is unavailable: %s' },
  /** The accounting archive could not answer: PostgreSQL is down, restarting, or not migrated yet. */
  QY_ERR_ARCHIVE_UNAVAILABLE: { statusCode: 503, message: 'The accounting archive (PostgreSQL) is unavailable: %s' },
  QY_ERR_INTERNAL: { statusCode: 500, message: 'Internal error: %s' },
  /** Federation: no site may run the job (data class, pool, resources); the message gives each site's reason. */
  QY_ERR_NO_FEASIBLE_SITE: { statusCode: 422, message: 'No site may run this job: %s' },
  QY_ERR_UNKNOWN_SITE: { statusCode: 400, message: 'Unknown site %s (known: %s)' },
  QY_ERR_FEDERATION_DISABLED: { statusCode: 400, message: 'This scheduler is not federated (no QY_SITE and QY_FEDERATION_FILE): %s' },
  QY_ERR_SITE_UNAVAILABLE: { statusCode: 503, message: 'Site %s did not answer: %s' },
  QY_ERR_DATASET_NOT_FOUND: { statusCode: 404, message: 'Dataset %s not found' },
  QY_ERR_DATASET_DESTROYED: { statusCode: 409, message: 'Dataset %s was destroyed (%s)' },
  /** The console's charts: no QY_PROMETHEUS_URL, or Prometheus did not answer as it should. */
  QY_ERR_PROMETHEUS_NOT_CONFIGURED: { statusCode: 404, message: 'No Prometheus is configured (QY_PROMETHEUS_URL)' },
  QY_ERR_PROMETHEUS_UNAVAILABLE: { statusCode: 502, message: 'Prometheus did not answer: %s' },
  QY_ERR_UNKNOWN_SERIES: { statusCode: 404, message: 'Unknown series %s: only the recording rules of configs/prometheus/rules/recording.yml (%s)' },
} as const satisfies Record<string, { statusCode: number; message: string }>;
export type ApiErrorCode = keyof typeof API_ERRORS;

/** Codes of a refused registration (the reply on `qy.register.<nodeId>`). */
export const REGISTRATION_ERROR_CODES = {
  /** The registration is not JSON. */
  malformedJson: 'QY_ERR_MALFORMED_JSON',
  /** It does not match the schema, or names another node than its subject. */
  validation: 'QY_ERR_VALIDATION',
  /** The scheduler could not take the node (its pool changed under load, the store failed). */
  refused: 'QY_ERR_REGISTRATION_REFUSED',
  /** The scheduler is not ready yet: the agent tries again, as when nobody answered. */
  notReady: 'QY_ERR_NOT_READY',
} as const satisfies Record<string, ApiErrorCode | 'QY_ERR_REGISTRATION_REFUSED'>;

/** Codes the API client raises itself, when there is no answer to take a code from. */
export const CLIENT_ERROR_CODES = {
  /** No replica answered: refused, reset or timed out. */
  unreachable: 'QY_ERR_UNREACHABLE',
  /** An error answer without the API's error body (a proxy's page, say). */
  unknown: 'QY_ERR_UNKNOWN',
} as const;

/** Any code of the system. */
export type ErrorCode = ApiErrorCode | (typeof REGISTRATION_ERROR_CODES)[keyof typeof REGISTRATION_ERROR_CODES] | (typeof CLIENT_ERROR_CODES)[keyof typeof CLIENT_ERROR_CODES];
