import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { datasetLineageSchema, datasetRegisterSchema, datasetViewSchema, destroyConfirmationSchema, errorBodySchema } from '../../../src/protocol';
import type { SchedulerOperations } from '../../operations';

const idParams = z.object({ id: z.string().min(1).max(80) });
const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema, 415: errorBodySchema, 503: errorBodySchema };
const security = [{ bearer: [] }];

/** Datasets: register, read, lineage, destroy. A tenant sees only its own; operators see all. */
export const datasetRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.post(
    '/v1/datasets',
    { config: { roles: ['tenant'] }, schema: { summary: 'Register a dataset', description: 'Its name, the site where it lives, size, classification and content hash.', tags: ['datasets'], security, body: datasetRegisterSchema, response: { 201: datasetViewSchema, ...errors } } },
    async (req, reply) => reply.code(201).send(await ops.datasets.register(req.body, req.principal!)),
  );
  app.get('/v1/datasets/:id', { schema: { summary: 'Get a dataset', tags: ['datasets'], security, params: idParams, response: { 200: datasetViewSchema, ...errors } } }, async (req) => ops.datasets.view(req.params.id, req.principal!));
  app.get(
    '/v1/datasets/:id/lineage',
    { schema: { summary: 'The jobs that read or wrote a dataset', tags: ['datasets'], security, params: idParams, response: { 200: datasetLineageSchema, ...errors } } },
    async (req) => ops.datasets.lineage(req.params.id, req.principal!),
  );
  app.post(
    '/v1/datasets/:id/destroy',
    { schema: { summary: 'Record the destruction of a dataset', description: 'A confirmation with who, when and the content hash, also in the audit chain.', tags: ['datasets'], security, params: idParams, response: { 200: destroyConfirmationSchema, ...errors } } },
    async (req) => ops.datasets.destroy(req.params.id, req.principal!),
  );
};
