/**
 * What a load run measured: counts and latency histograms (hdr-histogram-js, microseconds) in total, by
 * request kind, by tenant and by second of the run.
 */
import { latencyHistogram, percentileMs, round2 } from './engine';

/** How a response counts: ok (2xx), limited (a 429 that the tenant's scenario expects) or an error. */
export type Outcome = 'ok' | 'limited' | 'error';

/** 2xx is ok; a 429 is `limited` for a tenant meant to exceed its rate limit, else an error like any other status. */
export function classify(status: number, expectRateLimited: boolean): Outcome {
  if (status >= 200 && status < 300) return 'ok';
  return status === 429 && expectRateLimited ? 'limited' : 'error';
}

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Counts and latency of one slice of the run. */
export interface TallySummary {
  sent: number;
  ok: number;
  limited: number;
  errors: number;
  latencyMs: LatencySummary;
}


/** Counts and a latency histogram. Latency is recorded for every response, whatever its status, as k6's http_req_duration is. */
class Tally {
  sent = 0;
  ok = 0;
  limited = 0;
  errors = 0;
  readonly latency = latencyHistogram();

  count(outcome: Outcome): void {
    if (outcome === 'ok') this.ok++;
    else if (outcome === 'limited') this.limited++;
    else this.errors++;
  }

  percentileMs(p: number): number {
    return percentileMs(this.latency, p);
  }

  summary(): TallySummary {
    const h = this.latency;
    const ms = (p: number) => this.percentileMs(p);
    return {
      sent: this.sent,
      ok: this.ok,
      limited: this.limited,
      errors: this.errors,
      latencyMs: { count: h.totalCount, mean: round2(h.mean / 1000), p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max: round2(h.maxValue / 1000) },
    };
  }
}

/** One second of the run: requests sent in it, and responses (with their latency) that came back in it. */
export interface SecondSummary {
  second: number;
  sent: number;
  ok: number;
  limited: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** Records requests and responses of a run; `startNs` (process.hrtime) is second 0. */
export class Recorder {
  readonly total = new Tally();
  private readonly kinds: Record<string, Tally> = {};
  private readonly tenants: Record<string, Tally> = {};
  private readonly seconds: Tally[] = [];
  private readonly errorKinds = new Map<string, number>();
  inFlight = 0;

  constructor(private readonly startNs: bigint) {}

  /** A request of `kind` as `tenant` goes out now. */
  sent(kind: string, tenant: string, atNs: bigint): void {
    for (const t of this.tallies(kind, tenant, atNs)) t.sent++;
    this.inFlight++;
  }

  /** Its response came back with `status`, `sentNs` after it went out. */
  answered(kind: string, tenant: string, status: number, outcome: Outcome, sentNs: bigint, doneNs: bigint): void {
    const micros = Math.max(1, Number((doneNs - sentNs) / 1000n));
    for (const t of this.tallies(kind, tenant, doneNs)) {
      t.count(outcome);
      t.latency.recordValue(micros);
    }
    if (outcome === 'error') this.countError(`status ${status}`);
    this.inFlight--;
  }

  /** It failed without a response (refused, reset, timed out): an error without latency. */
  failed(kind: string, tenant: string, code: string, doneNs: bigint): void {
    for (const t of this.tallies(kind, tenant, doneNs)) t.count('error');
    this.countError(`network ${code}`);
    this.inFlight--;
  }

  byKind(): Record<string, TallySummary> {
    return summaries(this.kinds);
  }

  byTenant(): Record<string, TallySummary> {
    return summaries(this.tenants);
  }

  errorsByKind(): Record<string, number> {
    return Object.fromEntries(this.errorKinds);
  }

  /** Every second from the start to the last response, including quiet ones. */
  series(): SecondSummary[] {
    return Array.from(this.seconds, (t = new Tally(), second) => ({ second, sent: t.sent, ok: t.ok, limited: t.limited, errors: t.errors, p50Ms: t.percentileMs(50), p99Ms: t.percentileMs(99) }));
  }

  /** p99 of responses that came back during the last whole second, for the progress line. */
  lastSecondP99Ms(nowNs: bigint): number {
    return this.seconds[this.secondOf(nowNs) - 1]?.percentileMs(99) ?? 0;
  }

  private countError(kind: string): void {
    this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
  }

  private secondOf(atNs: bigint): number {
    return Math.max(0, Number((atNs - this.startNs) / 1_000_000_000n));
  }

  /** The tallies an event counts in: the total, its kind, its tenant and its second. */
  private tallies(kind: string, tenant: string, atNs: bigint): Tally[] {
    const second = this.secondOf(atNs);
    this.seconds[second] ??= new Tally();
    return [this.total, (this.kinds[kind] ??= new Tally()), (this.tenants[tenant] ??= new Tally()), this.seconds[second]];
  }
}

function summaries(tallies: Record<string, Tally>): Record<string, TallySummary> {
  return Object.fromEntries(Object.entries(tallies).map(([key, t]) => [key, t.summary()]));
}
