import rateLimit from '@fastify/rate-limit';
import fp from 'fastify-plugin';
import { QY_ERR_FORBIDDEN, QY_ERR_RATE_LIMITED, QY_ERR_UNAUTHENTICATED } from '../../src/errors';
import { HEADERS } from '../../src/protocol';
import type { SchedulerOperations } from '../operations';
import type { HttpDeps } from './app';
import type { Principal, TokenCheck } from '../tenants';

/** Roles a route admits, set in its `config.roles`. Routes without roles admit any authenticated caller. */
export type Role = Principal['kind'];

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling (every /v1 route): a tenant or an operator. */
    principal: Principal | null;
    tokenCheck: TokenCheck | null;
  }
  interface FastifyContextConfig {
    roles?: Role[];
  }
}

/** Requests per second from a caller without a valid token (per address): enough for a typo, not for guessing. */
const ANONYMOUS_PER_SECOND = 20;
/** Requests per second of an operator. */
const OPERATOR_PER_SECOND = 10_000;

const MESSAGES = { missing: 'send Authorization: Bearer <token>', unknown: 'the token is not valid', revoked: 'the token has been revoked' } as const;

/**
 * Bearer tokens on every /v1 route, per-caller rate limits, and roles per route. The order matters:
 * the token is resolved first, the rate limit counts per tenant (or per address without a valid token),
 * then an invalid token is refused (401, audited) and a role that may not call the route too (403, audited).
 */
export const authPlugin = fp<{ scheduler: Pick<HttpDeps, 'tenants'>; ops: SchedulerOperations }>(async (app, { scheduler, ops }) => {
  app.decorateRequest('principal', null);
  app.decorateRequest('tokenCheck', null);
  const isApi = (url: string) => url.startsWith('/v1/');

  app.addHook('onRequest', async (req) => {
    if (!isApi(req.url)) return;
    req.tokenCheck = scheduler.tenants.authenticate(req.headers.authorization);
    if (req.tokenCheck.ok) req.principal = req.tokenCheck.principal;
    const actAs = req.headers[HEADERS.actAs];
    if (req.principal && typeof actAs === 'string') {
      const acting = scheduler.tenants.actAs(req.principal, actAs);
      if (!acting) {
        await ops.audited(req.principal, { action: 'auth.forbidden', outcome: 'denied', details: { actAs } });
        throw new QY_ERR_FORBIDDEN(`${req.principal.kind} ${req.principal.name} may not act as tenant ${actAs}`);
      }
      req.principal = acting;
    }
  });

  await app.register(rateLimit, {
    global: true,
    timeWindow: 1000,
    allowList: (req) => !isApi(req.url),
    keyGenerator: (req) => (req.principal ? `${req.principal.kind}:${req.principal.name}` : `ip:${req.ip}`),
    max: (req) => (req.principal?.kind === 'tenant' ? req.principal.tenant.requestsPerSecond : req.principal ? OPERATOR_PER_SECOND : ANONYMOUS_PER_SECOND),
    errorResponseBuilder: (req, context) => {
      const e = new QY_ERR_RATE_LIMITED(req.principal?.name ?? req.ip, context.max);
      return { statusCode: e.statusCode, code: e.code, message: e.message };
    },
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!isApi(req.url) || req.principal) return;
    const reason = req.tokenCheck && !req.tokenCheck.ok ? req.tokenCheck.reason : 'missing';
    await ops.audited({ kind: 'anonymous', name: req.ip }, { action: 'auth.failed', outcome: 'denied', details: { reason, method: req.method, path: req.url.split('?')[0] } });
    void reply.header('www-authenticate', 'Bearer realm="qingyang-scheduler"');
    throw new QY_ERR_UNAUTHENTICATED(MESSAGES[reason]);
  });

  app.addHook('preHandler', async (req) => {
    const roles = req.routeOptions.config.roles;
    const principal = req.principal;
    if (!roles || !principal || roles.includes(principal.kind)) return;
    const what = `${req.method} ${req.routeOptions.url}`;
    await ops.audited(principal, { action: 'auth.forbidden', outcome: 'denied', details: { route: what } });
    throw new QY_ERR_FORBIDDEN(`${principal.kind} ${principal.name} may not call ${what}`);
  });
});
