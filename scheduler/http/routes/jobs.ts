import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HEADERS, errorBodySchema, jobListQuerySchema, jobListSchema, jobLogQuerySchema, jobLogSchema, jobSpecSchema, jobViewSchema, submitResponseSchema } from '../../../src/protocol';
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
        description: 'Submit a job: `202 {id, state}` once it is stored durably. An `Idempotency-Key` header makes retries safe: a repeated key returns the first job, also once it is only in the accounting archive.',
        tags: ['jobs'],
        security,
        body: jobSpecSchema,
        response: { 202: submitResponseSchema, ...errors },
      },
    },
    async (req, reply) => {
      const key = req.headers[HEADERS.idempotencyKey];
      if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key))) {
        throw new QY_ERR_VALIDATION('Idempotency-Key must be 1 to 255 visible ASCII characters');
      }
      const result = await ops.submit(req.body, req.principal!, key);
      if (result.replayed) reply.header(HEADERS.idempotentReplayed, 'true');
      return reply.code(202).send({ id: result.id, state: result.state });
    },
  );

  app.get('/v1/jobs', { schema: { summary: 'List jobs', description: 'Jobs in submission order, from memory and the archive (a tenant sees its own); `nextCursor` pages; `since`/`until` (ISO 8601) select the jobs in the system during a window, as `sacct` does: not finished before `since`, submitted before `until`.', tags: ['jobs'], security, querystring: jobListQuerySchema, response: { 200: jobListSchema, ...errors } } }, async (req) => ops.listJobs(req.query, req.principal!));

  app.get('/v1/jobs/:id', { schema: { summary: 'Get a job', description: 'A job: state, placement (nodes, GPU indices, cores, per-task state), pending reason, attempts, exit code, times, history, and `spec` (command, walltime, constraints, deferrable, the names of its `env` variables but not their values; lists leave `spec` out); once it has left memory, the same from the archive.', tags: ['jobs'], security, params: idParams, response: { 200: jobViewSchema, ...errors } } }, async (req) => ops.getJob(req.params.id, req.principal!));

  app.delete(
    '/v1/jobs/:id',
    { schema: { summary: 'Cancel a job', description: 'Cancel: a pending job leaves the queue, a running one is stopped by its agent (SIGTERM, then SIGKILL after `QY_CANCEL_GRACE_MS`); a finished one, in memory or archived, is `409 QY_ERR_JOB_FINISHED`.', tags: ['jobs'], security, params: idParams, response: { 202: submitResponseSchema, ...errors } } },
    async (req, reply) => reply.code(202).send(await ops.cancel(req.params.id, req.principal!)),
  );

  app.get(
    '/v1/jobs/:id/log',
    { schema: { summary: "The tail of a task's output", description: "The tail of a task's output, fetched from its agent (for an archived job, while the agent still has it; else `404 QY_ERR_LOG_UNAVAILABLE` saying why).", tags: ['jobs'], security, params: idParams, querystring: jobLogQuerySchema, response: { 200: jobLogSchema, ...errors } } },
    async (req) => ops.jobLog(req.params.id, req.principal!, req.query.task, req.query.bytes),
  );
};
