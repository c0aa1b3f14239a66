import type { ArrivalSpec } from '../scenarios';

/** A step of an arrival profile: the rate moves linearly to `target` (requests per second) over `durationS`. */
export interface Stage {
  durationS: number;
  target: number;
}

/** How fast requests arrive over a run: k6's ramping-arrival-rate model. */
export interface RateProfile {
  /** The scenario's arrival is constant (k6: constant-arrival-rate). */
  constant: boolean;
  startRate: number;
  stages: Stage[];
  peakRate: number;
  durationS: number;
}

export function rateProfile(arrival: ArrivalSpec, overrides?: { rate?: number; durationS?: number }): RateProfile;

export function parseDuration(text: string): number;
