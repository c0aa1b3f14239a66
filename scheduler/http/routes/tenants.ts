import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditQuerySchema, errorBodySchema, quotasBodySchema, tenantViewSchema } from '../../../src/protocol';
import { auditRecordSchema } from '../../../src/store/audit-log';
import type { SchedulerOperations } from '../../operations';

const nameParams = z.object({ name: z.string().min(1).max(63) });
const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema, 429: errorBodySchema, 503: errorBodySchema };
const security = [{ bearer: [] }];
const operators = { roles: ['operator' as const] };

/** Tenants and quotas (operators; a tenant sees itself) and the audit log (operators). */
export const tenantRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.get('/v1/tenants', { schema: { summary: 'Tenants with quotas and use', description: 'Tenants with weights, quotas and what they use and queue (a tenant sees itself).', tags: ['tenants'], security, response: { 200: z.object({ items: z.array(tenantViewSchema) }), ...errors } } }, async (req) => ({
    items: ops.tenants(req.principal!),
  }));
  app.get('/v1/tenants/:name', { schema: { summary: 'A tenant with quotas and use', tags: ['tenants'], security, params: nameParams, response: { 200: tenantViewSchema, ...errors } } }, async (req) =>
    ops.tenant(req.params.name, req.principal!),
  );
  app.put(
    '/v1/tenants/:name/quotas',
    { config: operators, schema: { summary: "Replace a tenant's quotas", description: "Replace a tenant's quotas (kept in the `qy-quotas` bucket, audited).", tags: ['tenants'], security, params: nameParams, body: quotasBodySchema, response: { 200: tenantViewSchema, ...errors } } },
    async (req) => ops.setQuotas(req.params.name, req.body, req.principal!),
  );
  app.get(
    '/v1/audit',
    {
      config: operators,
      schema: {
        summary: 'Audit records, oldest first',
        description: 'Page with afterSeq (the seq of the last record received). Every record carries the hash of the one before it: `qy audit verify` checks the chain.',
        tags: ['audit'],
        security,
        querystring: auditQuerySchema,
        response: { 200: z.object({ items: z.array(auditRecordSchema) }), ...errors },
      },
    },
    async (req) => ({
      items: await ops.auditRecords({ ...req.query, sinceMs: req.query.since ? Date.parse(req.query.since) : undefined }),
    }),
  );
};
