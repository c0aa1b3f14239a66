/**
 * The highest arrival rate that still meets a scenario's thresholds: double the rate until a trial fails,
 * then bisect between the last rate that passed and the first that failed. Pure apart from the trials it
 * runs, so it is tested with a fake trial function.
 */

export interface Trial<T> {
  rate: number;
  passed: boolean;
  result: T;
}

export interface SearchOptions {
  /** First rate tried. */
  startRate: number;
  /** Highest rate tried: a scenario that still passes here reports it as its maximum. */
  maxRate: number;
  /** Factor of the growth phase. */
  growth?: number;
  /** Bisection stops once the bracket is narrower than this share of the failing rate (or 1/s). */
  precision?: number;
  /** No more trials than this, however wide the bracket still is. */
  maxTrials?: number;
}

export interface SearchResult<T> {
  /** The highest rate that passed; 0 when none did. */
  maxRate: number;
  /** The trial at maxRate. */
  best?: Trial<T>;
  /** Every trial in the order run. */
  trials: Trial<T>[];
}

/** Searches with `runTrial(rate)`, which runs the load at `rate` and says whether the thresholds held. */
export async function findMaxRate<T>(runTrial: (rate: number) => Promise<{ passed: boolean; result: T }>, options: SearchOptions): Promise<SearchResult<T>> {
  const { growth = 2, precision = 0.05, maxTrials = 12 } = options;
  const trials: Trial<T>[] = [];
  const attempt = async (rate: number) => {
    const trial = { rate, ...(await runTrial(rate)) };
    trials.push(trial);
    return trial;
  };
  let best: Trial<T> | undefined;
  let failedAt: number | undefined;
  for (let rate = Math.max(1, Math.min(options.startRate, options.maxRate)); trials.length < maxTrials; rate = Math.min(options.maxRate, Math.round(rate * growth))) {
    const trial = await attempt(rate);
    if (!trial.passed) {
      failedAt = rate;
      break;
    }
    best = trial;
    if (rate >= options.maxRate) break;
  }
  while (failedAt !== undefined && trials.length < maxTrials) {
    const passedAt = best?.rate ?? 0;
    const rate = Math.round((passedAt + failedAt) / 2);
    if (failedAt - passedAt <= Math.max(1, precision * failedAt) || rate <= passedAt || rate >= failedAt) break;
    const trial = await attempt(rate);
    if (trial.passed) best = trial;
    else failedAt = rate;
  }
  return { maxRate: best?.rate ?? 0, best, trials };
}
