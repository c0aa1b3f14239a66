import { DAY_MS, type Point } from '../green';
import { seededRng, standardNormal } from './rng';

export interface NoisyPublishedOptions {
  /** Mean absolute error of the forecasts over their whole reach, horizons weighed alike (gCO2/kWh). */
  meanErrorG: number;
  seed: number;
  /** How often one is issued (default 30 min, as National Grid's). */
  issueEveryMs?: number;
  /** How far ahead each reaches (default 48 h). */
  aheadMs?: number;
}

/**
 * A stand-in for a forecast a grid operator publishes, for what-if runs of `eval:green` (`--published-error`):
 * issued every `issueEveryMs`, a point per step of the signal out to `aheadMs`, each the recorded future plus an
 * error that grows with the horizon as a random walk (a forecast drifts from the truth the further it looks,
 * its spread as the square root of the horizon), scaled so that the mean absolute error over the reach is
 * `meanErrorG`. Each issue's errors come from its own seed, so a forecast is the same however often it is asked
 * for. What a real provider's errors look like (biases, their correlation with weather) it does not model.
 */
export function noisyPublishedForecast(signal: { valueAt(tMs: number): number; stepMs: number }, options: NoisyPublishedOptions): (nowMs: number) => Point[] {
  const { meanErrorG, seed, issueEveryMs = 30 * 60_000, aheadMs = 2 * DAY_MS } = options;
  const { stepMs } = signal;
  const steps = Math.floor(aheadMs / stepMs);
  // A random walk's absolute error at horizon h is c·sqrt(h / 24 h) in the mean, c its mean at 24 h; over a
  // reach of R its mean is c·(2/3)·sqrt(R / 24 h). One step adds a normal of sd c·sqrt(π/2)·sqrt(step / 24 h).
  const at24h = meanErrorG / ((2 / 3) * Math.sqrt(aheadMs / DAY_MS));
  const stepSd = at24h * Math.sqrt(Math.PI / 2) * Math.sqrt(stepMs / DAY_MS);
  let issued: { atMs: number; points: Point[] } | undefined;
  return (nowMs) => {
    const atMs = Math.floor(nowMs / issueEveryMs) * issueEveryMs;
    if (issued?.atMs !== atMs) {
      const rng = seededRng(seed * 1_000_003 + Math.floor(atMs / issueEveryMs));
      const points: Point[] = [];
      let error = 0;
      for (let k = 1; k <= steps; k++) {
        error += stepSd * standardNormal(rng);
        const t = atMs + k * stepMs;
        points.push({ atMs: t, value: Math.max(0, signal.valueAt(t) + error) });
      }
      issued = { atMs, points };
    }
    return issued.points;
  };
}
