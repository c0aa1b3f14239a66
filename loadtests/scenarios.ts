/**
 * The load-test scenarios of loadtests/scenarios.json: their schema, the loader, and what the Node runner
 * needs from them. The file is the one definition of the scenarios: the k6 scripts read the same file, and
 * both sides turn it into requests with the same plain-JavaScript functions (k6/templates.js, k6/arrivals.js).
 */
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { LocalTenant } from '../harness/tenants';
import { loadDataFile } from '../src/files';
import { jobSpecSchema, poolSchema, priorityClassNameSchema } from '../src/protocol';
import { jobBody } from './k6/templates.js';

export { parseDuration, rateProfile, type RateProfile } from './k6/arrivals.js';
export { arrivalAt, compileScenario, prefillArrival, submitBody, tokenOf, type Arrival, type ScenarioPlan } from './k6/templates.js';
export { thresholdChecks, type ThresholdCheck } from './k6/thresholds.js';

/** loadtests/scenarios.json, wherever the runner is started from. */
export const DEFAULT_SCENARIOS_FILE = fileURLToPath(new URL('./scenarios.json', import.meta.url));

const nameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lower-case name (letters, digits, -)');
const rateSchema = z.number().int().min(0).max(1_000_000);
const secondsSchema = z.number().positive().max(24 * 3600);
/** Relative weights (whole numbers) by name; each cycle of a scenario is as long as the sum of its weights. */
const weightsSchema = z.record(nameSchema, z.number().int().min(1).max(1000)).refine((w) => Object.keys(w).length > 0, 'needs at least one name');

/** A job template: a job spec in cores and GiB; k6/templates.js jobBody() turns it into the API's body. */
export const jobTemplateSchema = z
  .strictObject({
    pool: poolSchema,
    cpuCores: z.number().positive(),
    memGiB: z.number().positive(),
    gpus: z.number().int().min(1).optional(),
    tasks: z.number().int().min(1).optional(),
    walltimeSeconds: z.number().int().min(1).optional(),
    durationSeconds: z.number().int().min(0).optional(),
    priorityClass: priorityClassNameSchema.optional(),
  })
  .superRefine((template, ctx) => {
    const checked = jobSpecSchema.safeParse(jobBody(template, 'template'));
    for (const issue of checked.success ? [] : checked.error.issues) ctx.addIssue({ code: 'custom', message: `as a job: ${issue.path.join('.')}: ${issue.message}` });
  });
export type JobTemplate = z.infer<typeof jobTemplateSchema>;

/** How requests arrive: at a constant rate, a base rate with periodic bursts, or k6-style stages. */
export const arrivalSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant'), rate: rateSchema.min(1), durationS: secondsSchema }),
  z
    .strictObject({ kind: z.literal('burst'), baseRate: rateSchema, burstRate: rateSchema.min(1), periodS: secondsSchema, burstS: secondsSchema, durationS: secondsSchema })
    .refine((b) => b.burstS < b.periodS, 'burstS must be shorter than periodS'),
  z.strictObject({
    kind: z.literal('stages'),
    startRate: rateSchema,
    stages: z.array(z.strictObject({ durationS: z.number().min(0).max(24 * 3600), target: rateSchema })).min(1),
  }),
]);
export type ArrivalSpec = z.infer<typeof arrivalSchema>;

export const requestKindSchema = z.enum(['submit', 'get', 'list']);
export type RequestKind = z.infer<typeof requestKindSchema>;

export const scenarioSchema = z
  .strictObject({
    description: z.string().min(1),
    arrival: arrivalSchema,
    /** Weights of the request kinds: POST /v1/jobs, GET /v1/jobs/:id, GET /v1/jobs (a page). */
    requests: z.partialRecord(requestKindSchema, z.number().int().min(1).max(1000)).refine((w) => Object.keys(w).length > 0, 'needs at least one request kind'),
    /** For reads: jobs submitted before the run (not measured), and the page size of list requests. */
    reads: z.strictObject({ prefill: z.number().int().min(0).max(100_000), listLimit: z.number().int().min(1).max(1000) }).optional(),
    /** Weights of the job templates among submissions. */
    mix: weightsSchema,
    /** Weights of the tenants among all requests. */
    tenants: weightsSchema,
    thresholds: z.strictObject({
      /** p99 of submission latency, milliseconds. */
      submitP99Ms: z.number().positive(),
      /** p99 of each read kind (get, list), milliseconds. */
      readP99Ms: z.number().positive().optional(),
      /** Errors as a share of requests sent; expected 429s of a rate-limited tenant are not errors. */
      errorRate: z.number().min(0).max(1),
    }),
  })
  .refine((s) => (s.requests.get === undefined && s.requests.list === undefined) || s.reads !== undefined, { message: 'reads are needed with get or list requests', path: ['reads'] });
export type Scenario = z.infer<typeof scenarioSchema>;

/** A tenant of the load: its API rate limit, and whether it is meant to exceed it (its 429s are then expected). */
export const loadTenantSchema = z.strictObject({ requestsPerSecond: z.number().int().min(1).max(1_000_000), expectRateLimited: z.boolean().optional() });

export const scenarioFileSchema = z
  .strictObject({
    templates: z.record(nameSchema, jobTemplateSchema),
    tenants: z.record(nameSchema, loadTenantSchema),
    scenarios: z.record(nameSchema, scenarioSchema),
  })
  .superRefine((file, ctx) => {
    for (const [name, s] of Object.entries(file.scenarios)) {
      for (const t of Object.keys(s.mix)) if (!file.templates[t]) ctx.addIssue({ code: 'custom', path: ['scenarios', name, 'mix', t], message: `no template ${t}` });
      for (const t of Object.keys(s.tenants)) if (!file.tenants[t]) ctx.addIssue({ code: 'custom', path: ['scenarios', name, 'tenants', t], message: `no tenant ${t}` });
    }
  });
export type ScenarioFile = z.infer<typeof scenarioFileSchema>;

/** Reads and validates a scenarios file; the error names the file and each field that is wrong. */
export function loadScenarios(path = DEFAULT_SCENARIOS_FILE): ScenarioFile {
  return loadDataFile(path, scenarioFileSchema);
}

/** The tenants of a local stack that can run every scenario of the file. */
export function localTenants(file: ScenarioFile): LocalTenant[] {
  return Object.entries(file.tenants).map(([name, t]) => ({ name, requestsPerSecond: t.requestsPerSecond }));
}
