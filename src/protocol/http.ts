import { z } from 'zod';
import { POOLS } from './common';

/** HTTP headers of the API with a meaning of their own, named once for the server and its clients. */
export const HEADERS = {
  /** A standby's answer to a write (503 QY_ERR_NOT_LEADER): the URL of the pool's leader, where to send it. */
  leader: 'x-qy-leader',
  /** An operator allowed to act as tenants (a bridge) names the tenant it acts for. */
  actAs: 'x-qy-act-as',
  /** Makes a submission safe to retry: the same key always answers with the same job. */
  idempotencyKey: 'idempotency-key',
  /** `true` on the answer to a submission whose Idempotency-Key was seen before (the same job, not a new one). */
  idempotentReplayed: 'idempotent-replayed',
} as const;

const leaderSchema = z.object({ replica: z.string(), url: z.string(), term: z.number().int() });

/** `GET /readyz` (200 when ready as asked, else 503, with the same body). */
export const readinessSchema = z.object({
  ready: z.boolean(),
  reason: z.string().optional(),
  role: z.enum(['leader', 'standby', 'partial']).describe('leader: leads every pool; standby: none; partial: some'),
  pools: z.record(z.enum(POOLS), z.object({ role: z.enum(['leader', 'standby']), leader: leaderSchema.optional().describe("The pool's leader as this replica last saw its lease") })),
});
export type Readiness = z.infer<typeof readinessSchema>;

export const readinessQuerySchema = z.object({ role: z.enum(['leader', 'any']).default('any'), pool: z.enum(POOLS).optional() });
export type ReadinessQuery = z.input<typeof readinessQuerySchema>;
