import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HEADERS, POOLS, readinessQuerySchema, readinessSchema, type Readiness } from '../../src/protocol';
import { QY_ERR_BODY_TOO_LARGE, QY_ERR_INTERNAL, QY_ERR_MALFORMED_JSON, QY_ERR_ROUTE_NOT_FOUND, QY_ERR_UNSUPPORTED_MEDIA_TYPE, QY_ERR_VALIDATION } from '../../src/errors';
import type { Logger } from '../../src/telemetry/logger';
import { notLeader, type SchedulerOperations } from '../operations';
import { NotLeaderError, type Leadership } from '../leadership';
import type { SchedulerMetrics } from '../../src/telemetry/metrics';
import type { TenantDirectory } from '../tenants';
import type { SchedulerConfig } from '../config';

/** What the HTTP layer reads of the scheduler: readiness, leadership, metrics and the tenants' tokens. */
export interface HttpDeps {
  readonly ready: boolean;
  readonly notReadyReason: string;
  readonly leadership: Pick<Leadership, 'leads' | 'leaderOf' | 'leadsAll' | 'ledPools'>;
  readonly metrics: Pick<SchedulerMetrics, 'contentType' | 'text'>;
  readonly tenants: TenantDirectory;
  readonly config: Pick<SchedulerConfig, 'prometheusUrl'>;
}
import { authPlugin } from './auth';
import { consoleRoutes } from './routes/console';
import { jobRoutes } from './routes/jobs';
import { nodeRoutes } from './routes/nodes';
import { tenantRoutes } from './routes/tenants';
import { usageRoutes } from './routes/usage';
import { datasetRoutes } from './routes/datasets';

/** A percent-encoded control character (U+0000 to U+001F, U+007F) in a request's path or query. */
const CONTROL_IN_URL = /%(?:[01][0-9a-f]|7f)/i;

/**
 * The HTTP API: fastify with zod schemas from src/protocol for validation, types and the OpenAPI document
 * (served at /docs/json). Every error leaves through one handler as {code, message, statusCode}.
 */
export async function buildHttpApp(scheduler: HttpDeps, ops: SchedulerOperations, options: { log: Logger; bodyLimitBytes: number; onRoute?: (route: RouteOptions) => void }): Promise<FastifyInstance<any, any, any, FastifyBaseLogger, ZodTypeProvider>> {
  const sendError = (thrown: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const err = (thrown instanceof NotLeaderError ? notLeader(thrown) : thrown) as FastifyError & { leaderUrl?: string };
    if (err.leaderUrl) void reply.header(HEADERS.leader, err.leaderUrl);
    const out = toQyError(err, options.bodyLimitBytes, String(req.headers['content-type'] ?? 'none'));
    // 503s (not ready, not the leader, store unavailable) are the service telling clients to retry: not errors of this request.
    if (out.statusCode >= 500 && out.statusCode !== 503) req.log.error({ err }, 'request failed');
    else req.log.debug({ code: out.code }, out.message);
    void reply.code(out.statusCode).send({ code: out.code, message: out.message, statusCode: out.statusCode });
  };
  const app = Fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes,
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    // The router's own refusals (a path that is not valid percent-encoding, a parameter too long) leave in the
    // same shape as every other error, not fastify's.
    frameworkErrors: sendError,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Every route as it is registered: scripts/gen-docs.ts writes the README's route table from them.
  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  await app.register(swagger, {
    openapi: {
      info: { title: 'qingyang-scheduler', description: 'Compute scheduler for the Qingyang cluster', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });

  // JSON only: without this, fastify would hand text/plain bodies to validation as strings.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(sendError);
  app.setNotFoundHandler((req, reply) => {
    const err = new QY_ERR_ROUTE_NOT_FOUND(req.method, req.url.split('?')[0]);
    void reply.code(404).send({ code: err.code, message: err.message, statusCode: 404 });
  });
  // The request id (sent as x-request-id, or generated) goes back to the caller and into every log line of the request.
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  // No id, name, period or filter holds a control character: one in the URL (a NUL reached PostgreSQL as a
  // lookup of an archived job, and came back as a 500) is a bad request, whatever the route.
  app.addHook('onRequest', (req, _reply, done) => {
    const control = CONTROL_IN_URL.exec(req.url);
    done(control ? new QY_ERR_VALIDATION(`the URL holds a control character (${control[0]}); ids, names, periods and filters never do`) : undefined);
  });
  app.addHook('onResponse', (req, reply, done) => {
    if (reply.statusCode >= 500 || req.log.level === 'debug' || req.log.level === 'trace') req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });

  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/metrics', { schema: { summary: 'Prometheus metrics of this replica (no token)', tags: ['health'] } }, async (_req, reply) => reply.type(scheduler.metrics.contentType).send(await scheduler.metrics.text()));
  app.get('/healthz', { schema: { summary: 'Liveness: the process serves requests', tags: ['health'], response: { 200: z.object({ ok: z.literal(true) }) } } }, async () => ({ ok: true as const }));
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: state rebuilt from the job log; with ?role=leader, and this replica leads the pools asked about',
        description:
          'Readiness: 200 once the state is rebuilt from the job log. The body says `role`: `leader` when this replica leads every pool, `standby` when it leads none, `partial` when it leads some (leaders are per pool), and for each pool its role here and that pool\'s `leader` (replica, URL, term). `?role=leader` answers 200 only on a replica that leads every pool (with `&pool=<pool>`: that pool), for a load balancer that sends writes.',
        tags: ['health'],
        querystring: readinessQuerySchema,
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (req, reply) => {
      const pools = Object.fromEntries(
        POOLS.map((pool) => {
          const lease = scheduler.leadership.leaderOf(pool);
          return [pool, { role: scheduler.leadership.leads(pool) ? ('leader' as const) : ('standby' as const), leader: lease && !lease.released ? { replica: lease.holder, url: lease.address, term: lease.term } : undefined }];
        }),
      ) as Readiness['pools'];
      const leadsAsked = req.query.pool ? scheduler.leadership.leads(req.query.pool) : scheduler.leadership.leadsAll;
      const body = {
        ready: scheduler.ready && (req.query.role === 'any' || leadsAsked),
        reason: !scheduler.ready ? scheduler.notReadyReason : req.query.role === 'leader' && !leadsAsked ? 'standby' : undefined,
        role: scheduler.leadership.leadsAll ? ('leader' as const) : scheduler.leadership.ledPools.length === 0 ? ('standby' as const) : ('partial' as const),
        pools,
      };
      return body.ready ? body : reply.code(503).send(body);
    },
  );
  await app.register(authPlugin, { scheduler, ops });
  await app.register(jobRoutes, { ops });
  await app.register(nodeRoutes, { ops });
  await app.register(tenantRoutes, { ops });
  await app.register(usageRoutes, { ops });
  await app.register(datasetRoutes, { ops });
  await app.register(consoleRoutes, { ops, prometheusUrl: scheduler.config.prometheusUrl });
  return app;
}

/** Maps any error to the service's error codes: validation and parsing problems are 4xx, never 5xx. */
function toQyError(err: FastifyError, bodyLimitBytes: number, contentType: string): { code: string; message: string; statusCode: number } {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'request';
    const problems = err.validation.map((v) => {
      const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
      return `${where}${path ? `.${path}` : ''}: ${v.message}`;
    });
    const e = new QY_ERR_VALIDATION(problems.join('; '));
    return { code: e.code, message: e.message, statusCode: 400 };
  }
  if (typeof err.code === 'string' && err.code.startsWith('QY_ERR_')) return { code: err.code, message: err.message, statusCode: err.statusCode ?? 500 };
  const mapped =
    err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? new QY_ERR_BODY_TOO_LARGE(String(bodyLimitBytes))
      : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? new QY_ERR_UNSUPPORTED_MEDIA_TYPE(contentType)
        : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
          ? new QY_ERR_MALFORMED_JSON(err.message)
          : err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500
            ? new QY_ERR_VALIDATION(err.message)
            : new QY_ERR_INTERNAL(err.message);
  return { code: mapped.code, message: mapped.message, statusCode: mapped.statusCode! };
}
