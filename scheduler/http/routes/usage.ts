import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { billCsv, disclosureMarkdown, periodSchema } from '../../../src/billing';
import { errorBodySchema, poolSchema, usageTasksSchema } from '../../../src/protocol';
import type { SchedulerOperations } from '../../operations';

const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema, 429: errorBodySchema, 503: errorBodySchema };
const security = [{ bearer: [] }];
/** The shapes of summaries, bills and reports are those of src/billing (see the README); responses are sent as built. */
const document = z.unknown();

const usageQuery = z.strictObject({
  period: periodSchema.describe('A month YYYY-MM or a day YYYY-MM-DD, in the cluster’s local time'),
  tenant: z.string().min(1).max(63).optional().describe('Operators: one tenant (default: all). Tenants see only their own.'),
  pool: poolSchema.optional(),
  jobId: z.string().min(1).max(64).optional(),
});
const billParams = z.object({ tenant: z.string().min(1).max(63), period: periodSchema });
const formatQuery = (formats: [string, ...string[]]) => z.strictObject({ format: z.enum(formats).default('json') });

/** Metered usage, bills and the public disclosure report. */
export const usageRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.get(
    '/v1/usage',
    {
      schema: {
        summary: 'Metered usage in a period',
        description: 'Core-hours, GPU-hours by model, memory, energy, green energy and carbon: totals and by tenant, pool, job and GPU model. Exact integers beside the display figures.',
        tags: ['usage'],
        security,
        querystring: usageQuery,
        response: { 200: document, ...errors },
      },
    },
    async (req) => ops.usage(req.query, req.principal!),
  );

  app.get(
    '/v1/usage/tasks',
    {
      schema: {
        summary: 'Metered usage per task in a period',
        description: 'The records /v1/usage sums: one per task of an attempt, with its segments in the period (memory and the accounting archive, each task once).',
        tags: ['usage'],
        security,
        querystring: usageQuery,
        response: { 200: usageTasksSchema, ...errors },
      },
    },
    async (req) => ops.usageTasks(req.query, req.principal!),
  );

  app.get(
    '/v1/bills/:tenant/:period',
    {
      schema: {
        summary: "A tenant's bill for a period",
        description: 'Lines per pool and item (cores, GPUs per model, memory, energy per time-of-use band), amounts in integer fen. `?format=csv` for a spreadsheet.',
        tags: ['usage'],
        security,
        params: billParams,
        querystring: formatQuery(['json', 'csv']),
        response: { 200: z.union([document, z.string()]), ...errors },
      },
    },
    async (req, reply) => {
      const bill = await ops.bill(req.params.tenant, req.params.period, req.principal!);
      if (req.query.format !== 'csv') return bill;
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="bill-${bill.tenant}-${bill.period}.csv"`)
        .send(billCsv(bill));
    },
  );

  app.get(
    '/v1/disclosure/:period',
    {
      config: { roles: ['operator'] },
      schema: {
        summary: 'Disclosure report of a period',
        description: 'How the public compute resources were used: capacity and services per pool, use per tenant and pool, energy, green share and carbon, jobs served. `?format=md` for Markdown.',
        tags: ['usage'],
        security,
        params: z.object({ period: periodSchema }),
        querystring: formatQuery(['json', 'md']),
        response: { 200: z.union([document, z.string()]), ...errors },
      },
    },
    async (req, reply) => {
      const report = await ops.disclosure(req.params.period);
      return req.query.format === 'md' ? reply.type('text/markdown; charset=utf-8').send(disclosureMarkdown(report)) : report;
    },
  );
};
