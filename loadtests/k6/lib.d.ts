/** Types of lib.js, for the tests that run it in Node with stand-ins for the k6 modules. */

/** What a k6 script exports for one scenario. */
export interface K6Script {
  options: {
    scenarios: Record<string, { executor: 'constant-arrival-rate' | 'ramping-arrival-rate' } & Record<string, unknown>>;
    thresholds: Record<string, string[]>;
  } & Record<string, unknown>;
  setup(): { ids: Record<string, string[]> };
  run(data: { ids: Record<string, string[]> }): void;
}

export function k6Scenario(name: string): K6Script;
