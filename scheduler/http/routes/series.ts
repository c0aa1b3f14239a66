import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { loadDataFile } from '../../../src/files';
import { QY_ERR_PROMETHEUS_NOT_CONFIGURED, QY_ERR_PROMETHEUS_UNAVAILABLE, QY_ERR_UNKNOWN_SERIES } from '../../../src/errors';
import { errorBodySchema, seriesListSchema, seriesQuerySchema, seriesRangeSchema, type SeriesRange } from '../../../src/protocol';

/** The rules Prometheus loads (configs/prometheus): the one list of what may be charted. */
const RECORDING_RULES = fileURLToPath(new URL('../../../configs/prometheus/rules/recording.yml', import.meta.url));
/** Points per line when the caller does not choose a step: enough for a chart 1,000 pixels wide. */
const DEFAULT_POINTS = 240;
const PROMETHEUS_TIMEOUT_MS = 10_000;

const rulesFileSchema = z.object({ groups: z.array(z.object({ rules: z.array(z.object({ record: z.string().optional() })) })) });
const rangeAnswerSchema = z.object({
  status: z.string(),
  error: z.string().optional(),
  data: z.object({ result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(z.tuple([z.number(), z.string()])) })) }).optional(),
});

/** The names of the recording rules in a rules file. */
export function recordedSeries(file = RECORDING_RULES): string[] {
  const doc = loadDataFile(file, rulesFileSchema);
  return doc.groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : [])));
}

/**
 * Charts over time for operators, from Prometheus (QY_PROMETHEUS_URL), so the browser needs no access to it.
 * Only range queries of the project's own recording rules pass: the query is the rule's name, built here,
 * never PromQL from the caller — the console cannot be used to run arbitrary (or expensive) queries.
 */
export const seriesRoutes: FastifyPluginAsyncZod<{ prometheusUrl: string | undefined }> = async (app, { prometheusUrl }) => {
  const series = recordedSeries();
  const operators = { roles: ['operator' as const] };
  const errors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema, 404: errorBodySchema, 429: errorBodySchema, 502: errorBodySchema };

  app.get(
    '/v1/series',
    { config: operators, schema: { summary: 'Series the console can chart', tags: ['console'], security: [{ bearer: [] }], response: { 200: seriesListSchema, ...errors } } },
    async () => ({ prometheus: prometheusUrl !== undefined, series }),
  );

  app.get(
    '/v1/series/:name',
    {
      config: operators,
      schema: {
        summary: 'A recording rule over time, from Prometheus',
        description: 'Charts over time: a range query of one recording rule of `configs/prometheus/rules/recording.yml`, ending now, from the Prometheus at `QY_PROMETHEUS_URL` (`404 QY_ERR_UNKNOWN_SERIES` for any other name, `404 QY_ERR_PROMETHEUS_NOT_CONFIGURED` without one, `502 QY_ERR_PROMETHEUS_UNAVAILABLE` when it does not answer).',
        tags: ['console'],
        security: [{ bearer: [] }],
        params: z.object({ name: z.string().min(1).max(128) }),
        querystring: seriesQuerySchema,
        response: { 200: seriesRangeSchema, ...errors },
      },
    },
    async (req) => {
      const name = req.params.name;
      if (!series.includes(name)) throw new QY_ERR_UNKNOWN_SERIES(name, series.join(', '));
      if (!prometheusUrl) throw new QY_ERR_PROMETHEUS_NOT_CONFIGURED();
      const stepSeconds = req.query.stepSeconds ?? Math.max(5, Math.ceil((req.query.minutes * 60) / DEFAULT_POINTS));
      const endS = Math.floor(Date.now() / 1000);
      const startS = endS - req.query.minutes * 60;
      return queryRange(prometheusUrl, name, startS, endS, stepSeconds);
    },
  );
};

/** One range query against Prometheus' HTTP API; any failure is QY_ERR_PROMETHEUS_UNAVAILABLE. */
async function queryRange(prometheusUrl: string, name: string, startS: number, endS: number, stepSeconds: number): Promise<SeriesRange> {
  // Resolved against the base with a trailing slash, so a Prometheus under a path prefix works too.
  const url = new URL('api/v1/query_range', prometheusUrl.endsWith('/') ? prometheusUrl : `${prometheusUrl}/`);
  url.search = new URLSearchParams({ query: name, start: String(startS), end: String(endS), step: String(stepSeconds) }).toString();
  let answer: z.infer<typeof rangeAnswerSchema>;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PROMETHEUS_TIMEOUT_MS) });
    answer = rangeAnswerSchema.parse(await res.json());
  } catch (err) {
    throw new QY_ERR_PROMETHEUS_UNAVAILABLE((err as Error).message, { cause: err });
  }
  if (answer.status !== 'success' || !answer.data) throw new QY_ERR_PROMETHEUS_UNAVAILABLE(answer.error ?? answer.status);
  return {
    series: name,
    start: new Date(startS * 1000).toISOString(),
    end: new Date(endS * 1000).toISOString(),
    stepSeconds,
    result: answer.data.result.map((r) => {
      const { __name__: _, ...labels } = r.metric;
      return { labels, points: r.values.map(([t, v]) => [t, Number.isFinite(Number(v)) ? Number(v) : null] as [number, number | null]) };
    }),
  };
}
