/**
 * Arrival-rate profiles of loadtests/scenarios.json, as k6's ramping-arrival-rate understands them: a start
 * rate and stages that each move linearly to a target rate over a duration (a zero duration jumps). Shared by
 * the k6 scripts (lib.js) and the Node runner (scenarios.ts). Types: arrivals.d.ts.
 */

/**
 * The profile of a scenario's `arrival`, optionally with another peak rate (every rate scales in proportion,
 * rounded to whole requests per second as k6 wants) or another duration (constant and burst arrivals run
 * longer or shorter; staged ones stretch every stage in proportion).
 */
export function rateProfile(arrival, overrides = {}) {
  const shape = shapeOf(arrival, overrides.durationS);
  // The peak of the whole profile, even when a short run ends before it (a burst comes late in its period).
  const nominal = shapeOf(arrival);
  const peak = Math.max(nominal.startRate, ...nominal.stages.map((s) => s.target));
  const factor = overrides.rate ? overrides.rate / peak : 1;
  const scaled = (rate) => Math.round(rate * factor);
  return {
    constant: arrival.kind === 'constant',
    startRate: scaled(shape.startRate),
    stages: shape.stages.map((s) => ({ durationS: s.durationS, target: scaled(s.target) })),
    peakRate: scaled(peak),
    durationS: shape.stages.reduce((sum, s) => sum + s.durationS, 0),
  };
}

/** Start rate and stages of an arrival, at its own rates. */
function shapeOf(arrival, durationS) {
  switch (arrival.kind) {
    case 'constant':
      return { startRate: arrival.rate, stages: [{ durationS: durationS ?? arrival.durationS, target: arrival.rate }] };
    case 'burst':
      return { startRate: arrival.baseRate, stages: burstStages(arrival, durationS ?? arrival.durationS) };
    case 'stages': {
      const total = arrival.stages.reduce((sum, s) => sum + s.durationS, 0);
      const stretch = durationS ? durationS / total : 1;
      return { startRate: arrival.startRate, stages: arrival.stages.map((s) => ({ durationS: s.durationS * stretch, target: s.target })) };
    }
    default:
      throw new Error(`unknown arrival kind ${arrival.kind}`);
  }
}

/** Periods of the base rate followed by a burst (jumps, not ramps), repeated for `durationS` seconds. */
function burstStages(arrival, durationS) {
  const period = [
    { durationS: arrival.periodS - arrival.burstS, target: arrival.baseRate },
    { durationS: 0, target: arrival.burstRate },
    { durationS: arrival.burstS, target: arrival.burstRate },
    { durationS: 0, target: arrival.baseRate },
  ];
  const stages = [];
  for (let i = 0, left = durationS; left > 0; i = (i + 1) % period.length) {
    const d = Math.min(period[i].durationS, left);
    stages.push({ durationS: d, target: period[i].target });
    left -= d;
  }
  return stages;
}

/** Seconds in a duration as the runner's flags and k6's environment take it: `30s`, `2m`, `500ms` or plain seconds. */
export function parseDuration(text) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!match) throw new Error(`not a duration: ${text} (write 30s, 2m, 500ms or seconds)`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? 's'];
  return Number(match[1]) * unit;
}
