/**
 * The open-model load generator of the Node runner: requests go out when the scenario's arrival profile says
 * they are due, whether or not earlier ones were answered, so a slow server meets more concurrent requests
 * rather than fewer (a closed loop would hide the slowness it causes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { buildReport, type Report } from './report';
import { arrivalAt, arrivalsBy, compileScenario, prefillArrival, rateProfile, tokenOf, type Arrival, type RateProfile, type ScenarioFile, type ScenarioPlan } from './scenarios';
import { classify, Recorder } from './stats';

/** Where the load goes: a scheduler and bearer tokens in the order of the scenario's tenants (reused round-robin when fewer). */
export interface Target {
  url: string;
  tokens: string[];
  /** Simulated nodes when the runner started the scheduler itself, for the report. */
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
  const pool = new Pool(target.url, { connections: options.connections ?? 64, pipelining: 1, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  try {
    const client = new ScenarioClient(plan, pool, target.tokens);
    const prefilled = await client.prefill(plan.scenario.reads?.prefill ?? 0);
    if (options.warmupS) await runPhase(plan, client, warmUpProfile(profile, options.warmupS));
    const startedAt = new Date();
    const { recorder, wallS } = await runPhase(plan, client, profile, options.onProgress);
    return buildReport({ plan, profile, target, startedAt, wallS, prefilled, recorder });
  } finally {
    await pool.destroy();
  }
}

/**
 * The warm-up: the scenario's requests at its start rate (at least 1/s), constant. The JIT compiles the hot
 * paths of the scheduler, nats-server's caches fill and connections open in the first seconds of load; a
 * scheduler runs for weeks, so the measured figures are for a warmed-up system (as bench/e2e's are).
 */
function warmUpProfile(profile: RateProfile, durationS: number): RateProfile {
  const rate = Math.max(1, profile.startRate);
  return { constant: true, startRate: rate, stages: [{ durationS, target: rate }], peakRate: rate, durationS };
}

/** Sends a profile's arrivals on schedule and waits for every answer; returns what was recorded and how long it all took. */
async function runPhase(plan: ScenarioPlan, client: ScenarioClient, profile: RateProfile, onProgress?: (progress: Progress) => void): Promise<{ recorder: Recorder; wallS: number }> {
  const startNs = process.hrtime.bigint();
  const recorder = new Recorder(startNs);
  const pending = new Set<Promise<void>>();
  const total = Math.round(arrivalsBy(profile, profile.durationS));
  const progress = () => onProgress?.({ sent: recorder.total.sent, total, ok: recorder.total.ok, errors: recorder.total.errors, inFlight: recorder.inFlight, lastSecondP99Ms: recorder.lastSecondP99Ms(process.hrtime.bigint()) });
  const ticker = setInterval(progress, PROGRESS_INTERVAL_MS);
  await dispatchOnSchedule(profile, total, startNs, (seq) => {
    const p = client.send(arrivalAt(plan, seq), recorder);
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }).finally(() => clearInterval(ticker));
  progress();
  await Promise.all(pending);
  return { recorder, wallS: Number(process.hrtime.bigint() - startNs) / 1e9 };
}

/**
 * Calls `send(seq)` for arrivals 0 … total-1 as they fall due: every millisecond it sends what the profile
 * says is due by now, so arrivals keep to the schedule (in small batches) even when the event loop lags.
 * Arrival `seq` is due once `seq` arrivals have passed: the first goes out at once, as k6's does.
 */
async function dispatchOnSchedule(profile: RateProfile, total: number, startNs: bigint, send: (seq: number) => void): Promise<void> {
  let seq = 0;
  while (seq < total) {
    const elapsedS = Number(process.hrtime.bigint() - startNs) / 1e9;
    const due = elapsedS >= profile.durationS ? total : Math.min(total, Math.floor(arrivalsBy(profile, elapsedS)) + 1);
    while (seq < due) send(seq++);
    if (seq < total) await sleep(1);
  }
}

/** Sends a scenario's requests as its tenants, and remembers the jobs and list cursors that later reads use. */
class ScenarioClient {
  /** Known job ids by tenant: a tenant sees only its own jobs. */
  private readonly ids: Record<string, string[]> = {};
  /** Where each tenant's next list page starts. */
  private readonly cursors: Record<string, string | undefined> = {};

  constructor(
    private readonly plan: ScenarioPlan,
    private readonly pool: Pool,
    private readonly tokens: string[],
  ) {}

  /** Submits `count` jobs before the run, for reads to find (not measured); returns how many were accepted. */
  async prefill(count: number): Promise<number> {
    let accepted = 0;
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const { status } = await this.request(prefillArrival(this.plan, i)).catch(() => ({ status: 0 }));
        if (status === 202) accepted++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(count, PREFILL_CONCURRENCY) }, worker));
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
      const e = err as { code?: string; name?: string };
      recorder.failed(request.kind, request.tenant, e.code ?? e.name ?? 'error', process.hrtime.bigint());
    }
  }

  /** A get needs a job of its tenant; until one is known it reads a list page instead. */
  private resolve(arrival: Arrival): Arrival {
    return arrival.kind === 'get' && !this.ids[arrival.tenant]?.length ? { kind: 'list', tenant: arrival.tenant } : arrival;
  }

  /** One HTTP request; reads the body where a later request needs something from it (a job id, a cursor). */
  private async request({ kind, tenant, body }: Arrival): Promise<{ status: number }> {
    const headers: Record<string, string> = { authorization: `Bearer ${tokenOf(this.plan, tenant, this.tokens)}` };
    if (kind === 'submit') {
      const res = await this.pool.request({ method: 'POST', path: '/v1/jobs', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const answer = await res.body.text();
      if (res.statusCode === 202) (this.ids[tenant] ??= []).push((JSON.parse(answer) as { id: string }).id);
      return { status: res.statusCode };
    }
    if (kind === 'get') {
      const ids = this.ids[tenant];
      const res = await this.pool.request({ method: 'GET', path: `/v1/jobs/${ids[Math.floor(Math.random() * ids.length)]}`, headers });
      await res.body.dump();
      return { status: res.statusCode };
    }
    // List requests page through the tenant's jobs, and start again from the first page after the last.
    const cursor = this.cursors[tenant];
    const limit = this.plan.scenario.reads!.listLimit; // the schema asks for reads with get or list requests
    const res = await this.pool.request({ method: 'GET', path: `/v1/jobs?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, headers });
    const answer = await res.body.text();
    if (res.statusCode === 200) this.cursors[tenant] = (JSON.parse(answer) as { nextCursor?: string }).nextCursor;
    return { status: res.statusCode };
  }
}
