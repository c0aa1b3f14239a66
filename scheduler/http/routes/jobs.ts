import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, jobListQuerySchema, jobListSchema, jobLogQuerySchema, jobLogSchema, jobSpecSchema, jobViewSchema, submitResponseSchema } from '../../../src/protocol';
import { QY_ERR_VALIDATION } from '../../../src/errors';
import type { SchedulerOperations } from '../../operations';

const idParams = z.object({ id: z.string().min(1).max(64) });
const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema, 413: errorBodySchema, 415: errorBodySchema, 422: errorBodySchema, 429: errorBodySchema, 503: errorBodySchema };
const security = [{ bearer: [] }];

/** Jobs: submit, read, list, cancel, and the tail of a task's output. A tenant sees only its own jobs. */
export const jobRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.post(
    '/v1/jobs',
    {
      config: { roles: ['tenant'] },
      schema: {
        summary: 'Submit a job',
        description: 'Answers 202 once the job is stored durably. Send an Idempotency-Key header to make retries safe.',
        tags: ['jobs'],
        security,
        body: jobSpecSchema,
        response: { 202: submitResponseSchema, ...errors },
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key))) {
        throw new QY_ERR_VALIDATION('Idempotency-Key must be 1 to 255 visible ASCII characters');
      }
      const result = await ops.submit(req.body, req.principal!, key);
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(202).send({ id: result.id, state: result.state });
    },
  );

  app.get('/v1/jobs', { schema: { summary: 'List jobs', tags: ['jobs'], security, querystring: jobListQuerySchema, response: { 200: jobListSchema, ...errors } } }, async (req) => ops.listJobs(req.query, req.principal!));

  app.get('/v1/jobs/:id', { schema: { summary: 'Get a job', tags: ['jobs'], security, params: idParams, response: { 200: jobViewSchema, ...errors } } }, async (req) => ops.getJob(req.params.id, req.principal!));

  app.delete(
    '/v1/jobs/:id',
    { schema: { summary: 'Cancel a job', description: 'A pending job leaves the queue; a running one is stopped by its agent.', tags: ['jobs'], security, params: idParams, response: { 202: submitResponseSchema, ...errors } } },
    async (req, reply) => reply.code(202).send(await ops.cancel(req.params.id, req.principal!)),
  );

  app.get(
    '/v1/jobs/:id/log',
    { schema: { summary: "The tail of a task's output", tags: ['jobs'], security, params: idParams, querystring: jobLogQuerySchema, response: { 200: jobLogSchema, ...errors } } },
    async (req) => ops.jobLog(req.params.id, req.principal!, req.query.task, req.query.bytes),
  );
};
