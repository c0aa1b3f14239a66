import type { RequestKind, Scenario } from '../scenarios';

/** One threshold of a scenario: p99 latency of a request kind (ms), or the error rate (a fraction). */
export type ThresholdCheck = { name: string; metric: 'p99'; kind: RequestKind; limit: number } | { name: string; metric: 'errorRate'; limit: number };

export function thresholdChecks(scenario: Scenario): ThresholdCheck[];
