import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { drainBodySchema, errorBodySchema, nodeViewSchema, poolsResponseSchema } from '../../../src/protocol';
import type { SchedulerOperations } from '../../operations';

const idParams = z.object({ id: z.string().min(1).max(63) });
const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema, 429: errorBodySchema, 503: errorBodySchema };
const security = [{ bearer: [] }];
const operators = { roles: ['operator' as const] };

/** Nodes (operators) and pools (everyone): list, cordon, uncordon, drain, remove. */
export const nodeRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.get('/v1/nodes', { config: operators, schema: { summary: 'List nodes', description: 'Nodes: state, allocation, power, green share.', tags: ['nodes'], security, response: { 200: z.object({ items: z.array(nodeViewSchema) }), ...errors } } }, async () => ({ items: ops.nodes() }));
  app.get('/v1/nodes/:id', { config: operators, schema: { summary: 'Get a node', tags: ['nodes'], security, params: idParams, response: { 200: nodeViewSchema, ...errors } } }, async (req) => ops.node(req.params.id));
  app.post('/v1/nodes/:id/cordon', { config: operators, schema: { summary: 'Cordon a node: no new work', tags: ['nodes'], security, params: idParams, response: { 200: nodeViewSchema, ...errors } } }, async (req) =>
    ops.cordon(req.params.id, true, req.principal!),
  );
  app.post('/v1/nodes/:id/uncordon', { config: operators, schema: { summary: 'Uncordon a node (ends a drain)', tags: ['nodes'], security, params: idParams, response: { 200: nodeViewSchema, ...errors } } }, async (req) =>
    ops.cordon(req.params.id, false, req.principal!),
  );
  app.delete(
    '/v1/nodes/:id',
    {
      config: operators,
      schema: {
        summary: 'Remove a down node',
        description: 'Forgets a node that is down with nothing placed on it, as `QY_NODE_GC_AFTER_MS` does after a day; its agent registering again brings it back. Any other node is `409 QY_ERR_NODE_NOT_REMOVABLE`.',
        tags: ['nodes'],
        security,
        params: idParams,
        response: { 200: nodeViewSchema, ...errors, 409: errorBodySchema },
      },
    },
    async (req) => ops.removeNode(req.params.id, req.principal!),
  );
  app.post(
    '/v1/nodes/:id/drain',
    {
      config: operators,
      schema: {
        summary: 'Drain a node',
        description: 'Cordons the node; its jobs run to completion, or with `{"requeue": true}` are stopped now and queued again.',
        tags: ['nodes'],
        security,
        params: idParams,
        body: drainBodySchema.optional(),
        response: { 200: nodeViewSchema.extend({ requeued: z.number().int() }), ...errors },
      },
    },
    async (req) => ops.drain(req.params.id, req.body?.requeue ?? false, req.principal!),
  );
  app.get('/v1/pools', { schema: { summary: 'Pools: capacity, allocation, queue', description: 'Capacity, allocation, queue length and running jobs per pool, and where the green signal comes from (with the live feed’s age).', tags: ['pools'], security, response: { 200: poolsResponseSchema, ...errors } } }, async () => ({ items: ops.pools(), greenSignal: ops.greenSignalSource() }));
};
