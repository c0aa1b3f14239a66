/**
 * What a scenario's thresholds check, shared by the k6 scripts (which turn each check into a k6 threshold
 * expression) and the Node runner (which evaluates it on its own measurements). Types: thresholds.d.ts.
 */

/**
 * The checks of a scenario: p99 latency of submissions and, with `readP99Ms`, of each read kind it sends,
 * below the limit in milliseconds; and errors as a share of all requests below `errorRate`. Every check
 * passes only when strictly below its limit, as k6's `p(99)<X` and `rate<Y` do.
 */
export function thresholdChecks(scenario) {
  const { submitP99Ms, readP99Ms, errorRate } = scenario.thresholds;
  const checks = [];
  if (scenario.requests.submit) checks.push({ name: 'submit p99 (ms)', metric: 'p99', kind: 'submit', limit: submitP99Ms });
  if (readP99Ms !== undefined) {
    for (const kind of ['get', 'list']) if (scenario.requests[kind]) checks.push({ name: `${kind} p99 (ms)`, metric: 'p99', kind, limit: readP99Ms });
  }
  checks.push({ name: 'error rate', metric: 'errorRate', limit: errorRate });
  return checks;
}
