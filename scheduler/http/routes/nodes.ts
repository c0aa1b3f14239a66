import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { drainBodySchema, errorBodySchema, nodeViewSchema, poolViewSchema } from '../../../src/protocol';
import type { SchedulerOperations } from '../../operations';

const idParams = z.object({ id: z.string().min(1).max(63) });

/** Nodes and pools: list, cordon, uncordon, drain. */
export const nodeRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.get('/v1/nodes', { schema: { summary: 'List nodes', tags: ['nodes'], response: { 200: z.object({ items: z.array(nodeViewSchema) }) } } }, async () => ({ items: ops.nodes() }));
  app.get('/v1/nodes/:id', { schema: { summary: 'Get a node', tags: ['nodes'], params: idParams, response: { 200: nodeViewSchema, 404: errorBodySchema } } }, async (req) => ops.node(req.params.id));
  app.post('/v1/nodes/:id/cordon', { schema: { summary: 'Cordon a node: no new work', tags: ['nodes'], params: idParams, response: { 200: nodeViewSchema, 404: errorBodySchema, 503: errorBodySchema } } }, async (req) =>
    ops.cordon(req.params.id, true),
  );
  app.post('/v1/nodes/:id/uncordon', { schema: { summary: 'Uncordon a node (ends a drain)', tags: ['nodes'], params: idParams, response: { 200: nodeViewSchema, 404: errorBodySchema, 503: errorBodySchema } } }, async (req) =>
    ops.cordon(req.params.id, false),
  );
  app.post(
    '/v1/nodes/:id/drain',
    {
      schema: {
        summary: 'Drain a node',
        description: 'Cordons the node; its jobs run to completion, or with {"requeue": true} are stopped now and queued again.',
        tags: ['nodes'],
        params: idParams,
        body: drainBodySchema.optional(),
        response: { 200: nodeViewSchema.extend({ requeued: z.number().int() }), 400: errorBodySchema, 404: errorBodySchema, 503: errorBodySchema },
      },
    },
    async (req) => ops.drain(req.params.id, req.body?.requeue ?? false),
  );
  app.get('/v1/pools', { schema: { summary: 'Pools: capacity, allocation, queue', tags: ['pools'], response: { 200: z.object({ items: z.array(poolViewSchema) }) } } }, async () => ({ items: ops.pools() }));
};
