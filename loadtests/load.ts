/**
 * The scenario runner of `npm run loadtest`: a scenario of scenarios.json sent by the load engine's open-model
 * loop as its tenants, measured by a Recorder.
 */
import { SchedulerApiError, SchedulerClient } from '../src/client';
import { buildReport, type Report } from './report';
import { constantProfile, runClosedLoop, runOpenModel, type RateProfile } from './engine';
import { arrivalAt, compileScenario, prefillArrival, rateProfile, tokenOf, type Arrival, type ScenarioFile, type ScenarioPlan } from './scenarios';
import { classify, Recorder } from './stats';

/** Where the load goes: a scheduler and bearer tokens in the order of the scenario's tenants (reused round-robin when fewer). */
export interface Target {
  url: string;
  tokens: string[];
  /** Virtual nodes when the runner started the scheduler itself, for the report. */
  localNodes?: number;
}

export interface RunOptions {
  /** Peak arrival rate; the scenario's other rates scale in proportion. */
  rate?: number;
  durationS?: number;
  /** Seconds of load before the measured run, not counted (see warmUpProfile). */
  warmupS?: number;
  /** HTTP connections to the scheduler. */
  connections?: number;
  /** Called every PROGRESS_INTERVAL_MS while requests go out, and once when all went out. */
  onProgress?: (progress: Progress) => void;
}

export interface Progress {
  sent: number;
  total: number;
  ok: number;
  errors: number;
  inFlight: number;
  lastSecondP99Ms: number;
}

/** A request that has not been answered by then counts as a network error (UND_ERR_HEADERS_TIMEOUT). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Jobs submitted at once while prefilling for reads. */
const PREFILL_CONCURRENCY = 32;
const PROGRESS_INTERVAL_MS = 200;

/** Runs one scenario against `target` and returns its report. */
export async function runScenario(file: ScenarioFile, name: string, target: Target, options: RunOptions = {}): Promise<Report> {
  const plan = compileScenario(file, name);
  const profile = rateProfile(plan.scenario.arrival, { rate: options.rate, durationS: options.durationS });
  const api = new SchedulerClient({ url: target.url, connections: options.connections ?? 64, timeoutMs: REQUEST_TIMEOUT_MS });
  try {
    const client = new ScenarioClient(plan, api, target.tokens);
    const prefilled = await client.prefill(plan.scenario.reads?.prefill ?? 0);
    if (options.warmupS) await runPhase(plan, client, warmUpProfile(profile, options.warmupS));
    const startedAt = new Date();
    const { recorder, wallS } = await runPhase(plan, client, profile, options.onProgress);
    return buildReport({ plan, profile, target, startedAt, wallS, prefilled, recorder });
  } finally {
    await api.close();
  }
}

/**
 * The warm-up: the scenario's requests at its start rate (at least 1/s), constant. The JIT compiles the hot
 * paths of the scheduler, nats-server's caches fill and connections open in the first seconds of load; a
 * scheduler runs for weeks, so the measured figures are for a warmed-up system (as bench/e2e's are).
 */
function warmUpProfile(profile: RateProfile, durationS: number): RateProfile {
  return constantProfile(Math.max(1, profile.startRate), durationS);
}

/** Sends a profile's arrivals on schedule and waits for every answer; returns what was recorded and how long it all took. */
async function runPhase(plan: ScenarioPlan, client: ScenarioClient, profile: RateProfile, onProgress?: (progress: Progress) => void): Promise<{ recorder: Recorder; wallS: number }> {
  const startNs = process.hrtime.bigint();
  const recorder = new Recorder(startNs);
  const { wallS } = await runOpenModel(profile, {
    startNs,
    send: (seq) => client.send(arrivalAt(plan, seq), recorder),
    progressEveryMs: PROGRESS_INTERVAL_MS,
    onProgress: onProgress && ((p) => onProgress({ sent: recorder.total.sent, total: p.total, ok: recorder.total.ok, errors: recorder.total.errors, inFlight: recorder.inFlight, lastSecondP99Ms: recorder.lastSecondP99Ms(process.hrtime.bigint()) })),
  });
  return { recorder, wallS };
}

/** Sends a scenario's requests as its tenants, and remembers the jobs and list cursors that later reads use. */
class ScenarioClient {
  /** Known job ids by tenant: a tenant sees only its own jobs. */
  private readonly ids: Record<string, string[]> = {};
  /** Where each tenant's next list page starts. */
  private readonly cursors: Record<string, string | undefined> = {};

  constructor(
    private readonly plan: ScenarioPlan,
    private readonly api: SchedulerClient,
    private readonly tokens: string[],
  ) {}

  /** Submits `count` jobs before the run, for reads to find (not measured); returns how many were accepted. */
  async prefill(count: number): Promise<number> {
    let accepted = 0;
    await runClosedLoop(PREFILL_CONCURRENCY, count, async (i) => {
      const { status } = await this.request(prefillArrival(this.plan, i)).catch(() => ({ status: 0 }));
      if (status === 202) accepted++;
    });
    return accepted;
  }

  /** Sends one arrival and records it; never rejects. */
  async send(arrival: Arrival, recorder: Recorder): Promise<void> {
    const request = this.resolve(arrival);
    const sentNs = process.hrtime.bigint();
    recorder.sent(request.kind, request.tenant, sentNs);
    try {
      const { status } = await this.request(request);
      const expectRateLimited = this.plan.tenantConfigs[request.tenant]?.expectRateLimited ?? false;
      recorder.answered(request.kind, request.tenant, status, classify(status, expectRateLimited), sentNs, process.hrtime.bigint());
    } catch (err) {
      const cause = (err instanceof Error ? err.cause : err) as { code?: string; name?: string } | undefined;
      recorder.failed(request.kind, request.tenant, cause?.code ?? cause?.name ?? 'error', process.hrtime.bigint());
    }
  }

  /** A get needs a job of its tenant; until one is known it reads a list page instead. */
  private resolve(arrival: Arrival): Arrival {
    return arrival.kind === 'get' && !this.ids[arrival.tenant]?.length ? { kind: 'list', tenant: arrival.tenant } : arrival;
  }

  /** One HTTP request, answered with its status (an error answer too); remembers what later reads need (job ids, cursors). */
  private async request({ kind, tenant, body }: Arrival): Promise<{ status: number }> {
    const caller = { token: tokenOf(this.plan, tenant, this.tokens) };
    try {
      if (kind === 'submit') {
        (this.ids[tenant] ??= []).push((await this.api.submit(body!, caller)).id);
        return { status: 202 };
      }
      if (kind === 'get') {
        const ids = this.ids[tenant];
        await this.api.job(ids[Math.floor(Math.random() * ids.length)], caller);
        return { status: 200 };
      }
      // List requests page through the tenant's jobs, and start again from the first page after the last.
      const limit = this.plan.scenario.reads!.listLimit; // the schema asks for reads with get or list requests
      this.cursors[tenant] = (await this.api.listJobs({ limit, cursor: this.cursors[tenant] }, caller)).nextCursor;
      return { status: 200 };
    } catch (err) {
      if (err instanceof SchedulerApiError && err.statusCode > 0) return { status: err.statusCode };
      throw err;
    }
  }
}
