import { z } from 'zod';
import { dataClassSchema, poolSchema } from './common';
import { jobSpecSchema } from './job';

/**
 * Federation: sites (full deployments, each with its own NATS cluster) joined by NATS gateways. The wire
 * shapes of the federation file (QY_FEDERATION_FILE), of what sites tell each other over the federation
 * account (capacity summaries, forwarded jobs, job questions), of the per-job claim and of datasets.
 */

/** A site name: lower-case, as in `QY_SITE=qy-a`; also a NATS subject token. */
export const siteNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a site name such as qy-a');

/** One site of the federation. */
export const federationSiteSchema = z.strictObject({
  name: siteNameSchema,
  /** Pools the site runs. */
  pools: z.array(poolSchema).min(1),
  /** Data classes the site is certified for: `sensitive` data goes only to certified sites, `restricted` never leaves home. */
  certified: z.array(dataClassSchema).default(['public', 'internal']),
  /** Green power: the share of the site's power that is green, and the grid's carbon intensity. A live share from the site's summary replaces `share`. */
  green: z.strictObject({ share: z.number().min(0).max(1).default(0), carbonGPerKwh: z.number().min(0).default(550) }).default({ share: 0, carbonGPerKwh: 550 }),
  /** What an hour costs there (CNY): per CPU core and per GPU. */
  prices: z.strictObject({ cpuCoreHour: z.number().min(0).default(0.1), gpuHour: z.number().min(0).default(8) }).default({ cpuCoreHour: 0.1, gpuHour: 8 }),
});
export type FederationSite = z.infer<typeof federationSiteSchema>;

/** A network link between two sites (both directions). */
export const federationLinkSchema = z.strictObject({
  between: z.tuple([siteNameSchema, siteNameSchema]),
  bandwidthGbps: z.number().positive(),
  latencyMs: z.number().min(0),
});
export type FederationLink = z.infer<typeof federationLinkSchema>;

/** How the router weighs what is not time: each weight turns a kilogram of CO2 or a yuan into seconds of wait. */
export const routingWeightsSchema = z.strictObject({
  secondsPerKgCo2: z.number().min(0).default(60),
  secondsPerYuan: z.number().min(0).default(10),
  /** A job stays home unless another site is better by more than this many seconds (no flapping on noise). */
  preferHomeWithinS: z.number().min(0).default(5),
});
export type RoutingWeights = z.infer<typeof routingWeightsSchema>;

/** The federation file: sites, links and routing weights. */
export const federationFileSchema = z
  .strictObject({
    sites: z.array(federationSiteSchema).min(1),
    links: z.array(federationLinkSchema).default([]),
    weights: routingWeightsSchema.default(() => routingWeightsSchema.parse({})),
  })
  .superRefine((f, ctx) => {
    const names = new Set<string>();
    for (const [i, s] of f.sites.entries()) {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sites', i, 'name'], message: `site ${s.name} is listed twice` });
      names.add(s.name);
    }
    for (const [i, l] of f.links.entries()) {
      for (const end of l.between) if (!names.has(end)) ctx.addIssue({ code: 'custom', path: ['links', i, 'between'], message: `unknown site ${end}` });
      if (l.between[0] === l.between[1]) ctx.addIssue({ code: 'custom', path: ['links', i, 'between'], message: 'a link joins two different sites' });
    }
  });
export type FederationFile = z.infer<typeof federationFileSchema>;

// ---- Capacity summaries (core NATS, qy.fed.summary.<site>, every second) -----------------------------------

const poolSummarySchema = z.object({
  nodes: z.number().int().min(0),
  /** Allocatable in total, and the largest single node (a task bigger than it fits nowhere there). */
  capacity: z.object({ cpuMillis: z.number(), memBytes: z.number(), gpus: z.number() }),
  largestNode: z.object({ cpuMillis: z.number(), memBytes: z.number(), gpus: z.number() }),
  allocated: z.object({ cpuMillis: z.number(), memBytes: z.number(), gpuMilli: z.number() }),
  /** Jobs waiting, and what they ask for in all (CPU and GPU, every task). */
  pendingJobs: z.number().int().min(0),
  pendingCpuMillis: z.number().min(0),
  pendingGpuMilli: z.number().min(0),
  /** Mean declared run time of the jobs there (waiting and running), seconds: how fast the backlog drains. */
  meanRunSeconds: z.number().min(0),
});
export type PoolSummary = z.infer<typeof poolSummarySchema>;

/** What a site tells the others about itself. */
export const siteSummarySchema = z.object({
  type: z.literal('summary'),
  site: siteNameSchema,
  atMs: z.number().int(),
  /** Green share of the site's power now (from its nodes' heartbeats), when it has nodes reporting. */
  greenShare: z.number().min(0).max(1).optional(),
  pools: z.partialRecord(poolSchema, poolSummarySchema),
});
export type SiteSummary = z.infer<typeof siteSummarySchema>;

// ---- Forwarding a job to the site that runs it (request/reply, qy.fed.site.<site>.submit) -----------------

/** The home site asks another to run a job it routed there, under the claim it holds in its bucket. */
export const forwardRequestSchema = z.object({
  type: z.literal('forward'),
  jobId: z.string().min(1).max(64),
  home: siteNameSchema,
  tenant: z.string().min(1),
  spec: jobSpecSchema,
  submittedAtMs: z.number().int(),
  /** Why the router chose this site (the job's pending reason there). */
  route: z.string(),
});
export type ForwardRequest = z.infer<typeof forwardRequestSchema>;

/** A site's answer to any federation request: ok with a body, or an error code and message. */
export const fedReplySchema = z.union([z.object({ ok: z.literal(true), body: z.unknown().optional() }), z.object({ ok: z.literal(false), code: z.string(), message: z.string(), statusCode: z.number().int() })]);
export type FedReply = z.infer<typeof fedReplySchema>;

/** Questions about a forwarded job, asked of the site that runs it (qy.fed.site.<site>.job). */
export const jobQuestionSchema = z.object({
  type: z.literal('job'),
  op: z.enum(['get', 'cancel', 'log', 'usage']),
  jobId: z.string().min(1).max(64),
  tenant: z.string().min(1),
  /** Who asks (for the audit record at the running site). */
  by: z.string(),
  task: z.number().int().min(0).default(0),
  bytes: z.number().int().min(1).max(1_048_576).default(65_536),
  /** For `usage`: the period (`YYYY-MM` or `YYYY-MM-DD`). */
  period: z.string().max(10).optional(),
});
export type JobQuestion = z.infer<typeof jobQuestionSchema>;

// ---- The per-job claim (KV qy-fed-claims-<home site>, key = job id) ----------------------------------------

/**
 * Which site runs a job the home site routed away. `offered`: forwarded (or about to be), not started; the
 * home may take it back and route it again. `started`: the executor confirmed, by compare-and-set, that it
 * starts the job: from then on only it runs it. `cancelled`: cancelled before it started.
 */
export const claimSchema = z.object({
  jobId: z.string(),
  home: siteNameSchema,
  executor: siteNameSchema,
  state: z.enum(['offered', 'started', 'cancelled']),
  tenant: z.string(),
  spec: jobSpecSchema,
  submittedAtMs: z.number().int(),
  route: z.string(),
  /** Sites the job was offered to before and taken back from. */
  gaveBack: z.array(siteNameSchema).default([]),
  /** The input datasets as the router saw them (routing again needs them). */
  inputs: z.array(z.object({ id: z.string(), site: z.string(), sizeBytes: z.number(), classification: dataClassSchema })).default([]),
});
export type Claim = z.infer<typeof claimSchema>;

// ---- Datasets -----------------------------------------------------------------------------------------------

/** A SHA-256 content hash, as `sha256:<64 hex>`. */
export const contentHashSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');

/** The body of `POST /v1/datasets`. */
export const datasetRegisterSchema = z.strictObject({
  name: z.string().min(1).max(128),
  /** Where the data lives; the local site when absent. */
  site: siteNameSchema.optional(),
  sizeBytes: z.number().int().min(0).max(2 ** 53 - 1),
  classification: dataClassSchema,
  contentHash: contentHashSchema,
});
export type DatasetRegister = z.infer<typeof datasetRegisterSchema>;

/** One job's use of a dataset. */
export const lineageEntrySchema = z.object({ jobId: z.string(), role: z.enum(['read', 'wrote']), site: z.string(), tenant: z.string(), at: z.string() });
export type LineageEntry = z.infer<typeof lineageEntrySchema>;

/** A dataset as the API shows it. */
export const datasetViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  tenant: z.string(),
  site: z.string(),
  sizeBytes: z.number(),
  classification: dataClassSchema,
  contentHash: z.string(),
  registeredAt: z.string(),
  registeredBy: z.string(),
  destroyed: z.object({ by: z.string(), at: z.string(), contentHash: z.string() }).optional(),
});
export type DatasetView = z.infer<typeof datasetViewSchema>;

/** `GET /v1/datasets/:id/lineage`: the dataset and the jobs that read or wrote it. */
export const datasetLineageSchema = z.object({ dataset: datasetViewSchema, jobs: z.array(lineageEntrySchema) });
export type DatasetLineage = z.infer<typeof datasetLineageSchema>;

/** A dataset record as stored: the view and its lineage. */
export const datasetRecordSchema = datasetViewSchema.extend({ lineage: z.array(lineageEntrySchema).default([]) });
export type DatasetRecord = z.infer<typeof datasetRecordSchema>;

/** The answer of `POST /v1/datasets/:id/destroy`: the destruction confirmation. */
export const destroyConfirmationSchema = z.object({ id: z.string(), destroyedBy: z.string(), destroyedAt: z.string(), contentHash: z.string(), site: z.string() });
export type DestroyConfirmation = z.infer<typeof destroyConfirmationSchema>;

/** Dataset ids name the site whose bucket holds the record: `ds-<site>-<random>`. */
export function datasetSiteOf(id: string): string | undefined {
  const m = /^ds-([a-z][a-z0-9-]{0,31})-[0-9a-z]{8,32}$/.exec(id);
  return m?.[1];
}
