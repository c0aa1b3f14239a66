import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBodySchema, greenQuerySchema, greenViewSchema } from '../../../src/protocol';
import { HOUR_MS } from '../../../src/time';
import type { SchedulerOperations } from '../../operations';

/** The green page's data: the signal deferral plans against, its forecast, pool power, deferred jobs and their planned starts. */
export const greenRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.get(
    '/v1/green',
    {
      schema: {
        summary: 'Green signal, forecast and deferred jobs',
        description: "The carbon signal now and forecast ahead (gCO2/kWh), the forecaster's recent error per horizon and the signal's level (its last day's mean: plans hold a quarter of it against a forecast not yet measured), power, green power and the share deferred work may book per pool, and the jobs held for greener power with their planned starts. A tenant sees only its own deferred jobs.",
        tags: ['green'],
        security: [{ bearer: [] }],
        querystring: greenQuerySchema,
        response: { 200: greenViewSchema, 400: errorBodySchema, 401: errorBodySchema, 429: errorBodySchema },
      },
    },
    async (req) => ops.green(req.principal!, req.query.hours * HOUR_MS),
  );
};
