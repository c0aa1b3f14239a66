import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { auditVerdictSchema, errorBodySchema } from '../../../src/protocol';
import type { SchedulerOperations } from '../../operations';

/** The audit chain's verification, for the console's audit page: the server walks the whole log as `qy audit verify` does. */
export const auditVerifyRoutes: FastifyPluginAsyncZod<{ ops: SchedulerOperations }> = async (app, { ops }) => {
  app.get(
    '/v1/audit/verify',
    {
      config: { roles: ['operator'] },
      schema: {
        summary: "Check the audit log's hash chain",
        description:
          'Reads every record — the accounting archive first, then the live QY_AUDIT stream, as one chain — and checks sequence numbers, each hash over its content and each link to the record before; names the first missing or altered record. `archivedRecords`: how many of them came from the archive.',
        tags: ['audit'],
        security: [{ bearer: [] }],
        response: { 200: auditVerdictSchema, 401: errorBodySchema, 403: errorBodySchema, 429: errorBodySchema, 503: errorBodySchema },
      },
    },
    async () => ({ ...(await ops.verifyAudit()), checkedAt: new Date().toISOString() }),
  );
};
