import { setTimeout as sleep } from 'node:timers/promises';
import type { RateProfile } from '../k6/arrivals.js';

/**
 * The open-model dispatch loop of every load tool (the scenario runner, bench:e2e, bench:failover): arrivals
 * go out when the rate profile says they are due, whether or not earlier ones were answered, so a slow server
 * meets more concurrent requests rather than fewer (a closed loop would hide the slowness it causes).
 */

export type { RateProfile };

/** A constant rate for a while: warm-ups, bench:e2e's phases, the failover load. */
export function constantProfile(rate: number, durationS: number): RateProfile {
  return { constant: true, startRate: rate, stages: [{ durationS, target: rate }], peakRate: rate, durationS };
}

/** How many arrivals a profile has sent `t` seconds into a run: the integral of its piecewise-linear rate. */
export function arrivalsBy(profile: RateProfile, t: number): number {
  let count = 0;
  let from = profile.startRate;
  let stageStart = 0;
  for (const stage of profile.stages) {
    if (t <= stageStart) break;
    const span = Math.min(stage.durationS, t - stageStart);
    const slope = stage.durationS > 0 ? (stage.target - from) / stage.durationS : 0;
    count += from * span + (slope * span * span) / 2;
    stageStart += stage.durationS;
    from = stage.target;
  }
  return count;
}

/** Where a run stands, for progress lines. */
export interface OpenModelProgress {
  sent: number;
  total: number;
  inFlight: number;
  elapsedS: number;
}

export interface OpenModelOptions {
  /** Sends arrival `seq` now; the promise, if any, is its answer. A rejection fails the run once all are settled. */
  send: (seq: number) => Promise<unknown> | void;
  /** Second 0 of the run (process.hrtime); now by default. */
  startNs?: bigint;
  /** Called every `progressEveryMs` while arrivals go out, and once when all went out. */
  onProgress?: (progress: OpenModelProgress) => void;
  progressEveryMs?: number;
}

export interface OpenModelRun {
  /** Arrivals sent. */
  sent: number;
  /** From the start until the last answer, seconds. */
  wallS: number;
}

/** Sends a profile's arrivals on schedule and waits for every answer. */
export async function runOpenModel(profile: RateProfile, options: OpenModelOptions): Promise<OpenModelRun> {
  const startNs = options.startNs ?? process.hrtime.bigint();
  const elapsedS = () => Number(process.hrtime.bigint() - startNs) / 1e9;
  const total = Math.round(arrivalsBy(profile, profile.durationS));
  const inFlight = new Set<Promise<unknown>>();
  let sent = 0;
  let failure: { error: unknown } | undefined;
  const progress = () => options.onProgress?.({ sent, total, inFlight: inFlight.size, elapsedS: elapsedS() });
  const ticker = options.onProgress ? setInterval(progress, options.progressEveryMs ?? 200) : undefined;
  try {
    await dispatchOnSchedule(profile, total, startNs, (seq) => {
      sent++;
      const answer = options.send(seq);
      if (!answer) return;
      const tracked = answer.then(
        () => undefined,
        (error: unknown) => void (failure ??= { error }),
      );
      inFlight.add(tracked);
      void tracked.finally(() => inFlight.delete(tracked));
    });
  } finally {
    clearInterval(ticker);
  }
  progress();
  await Promise.all(inFlight);
  if (failure) throw failure.error;
  return { sent, wallS: elapsedS() };
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
