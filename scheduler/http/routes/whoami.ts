import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBodySchema, whoamiSchema } from '../../../src/protocol';

/** Who the caller is: the console signs in with a token and shows an operator's pages only to operators. */
export const whoamiRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/whoami',
    { schema: { summary: 'The caller: tenant or operator, and its name', description: 'The caller: `{kind: "tenant" | "operator", name, displayName}`.', tags: ['console'], security: [{ bearer: [] }], response: { 200: whoamiSchema, 401: errorBodySchema, 429: errorBodySchema } } },
    async (req) => {
      const p = req.principal!;
      return p.kind === 'tenant' ? { kind: p.kind, name: p.name, displayName: p.tenant.displayName, via: p.via } : { kind: p.kind, name: p.name };
    },
  );
};
