/**
 * The k6 side of the load tests: each loadtests/k6/<scenario>.js is `k6Scenario('<scenario>')`. The scenario
 * comes from ../scenarios.json, the file the Node runner reads, and the requests from the same functions
 * (templates.js, arrivals.js, thresholds.js), so `k6 run` and `npm run loadtest` send the same load.
 *
 *   K6_QY_URL       the scheduler (default http://127.0.0.1:8080)
 *   K6_QY_TOKEN     bearer token of the tenant; or
 *   K6_QY_TOKENS    comma-separated tokens in the order of the scenario's tenants (noisy-tenant: noisy first)
 *   K6_QY_RATE      peak arrival rate, requests/s (default: the scenario's); its other rates scale in proportion
 *   K6_QY_DURATION  length of the run: 30s, 2m or seconds (default: the scenario's)
 */
import exec from 'k6/execution';
import http from 'k6/http';
import { parseDuration, rateProfile } from './arrivals.js';
import { arrivalAt, compileScenario, prefillArrival, tokenOf } from './templates.js';
import { thresholdChecks } from './thresholds.js';

const file = JSON.parse(open('../scenarios.json'));
const baseUrl = __ENV.K6_QY_URL || 'http://127.0.0.1:8080';
const tokens = (__ENV.K6_QY_TOKENS || __ENV.K6_QY_TOKEN || '').split(',').filter(Boolean);
/** A tenant meant to exceed its rate limit: its 429s are the limiter working, not failed requests. */
const limitedIsExpected = http.expectedStatuses({ min: 200, max: 399 }, 429);

/** `options`, `setup` and the iteration of a k6 script for scenario `name`. */
export function k6Scenario(name) {
  if (tokens.length === 0) throw new Error('set K6_QY_TOKEN or K6_QY_TOKENS');
  const plan = compileScenario(file, name);
  const profile = rateProfile(plan.scenario.arrival, {
    rate: Number(__ENV.K6_QY_RATE) || undefined,
    durationS: __ENV.K6_QY_DURATION ? parseDuration(__ENV.K6_QY_DURATION) : undefined,
  });
  return { options: k6Options(plan, profile), setup: () => prefill(plan), run: (data) => iteration(plan, data) };
}

const duration = (seconds) => `${Math.round(seconds * 1000)}ms`;

/** The arrival profile as a k6 executor, and the scenario's thresholds in k6's form. */
function k6Options(plan, profile) {
  const vus = { preAllocatedVUs: Math.max(10, Math.ceil(profile.peakRate / 10)), maxVUs: Math.max(100, profile.peakRate * 2) };
  const executor = profile.constant
    ? { executor: 'constant-arrival-rate', rate: profile.peakRate, timeUnit: '1s', duration: duration(profile.durationS) }
    : { executor: 'ramping-arrival-rate', startRate: profile.startRate, timeUnit: '1s', stages: profile.stages.map((s) => ({ target: s.target, duration: duration(s.durationS) })) };
  const thresholds = {};
  for (const check of thresholdChecks(plan.scenario)) {
    if (check.metric === 'errorRate') thresholds.http_req_failed = [`rate<${check.limit}`];
    else thresholds[`http_req_duration{kind:${check.kind}}`] = [`p(99)<${check.limit}`];
  }
  return { scenarios: { [plan.name]: { ...executor, ...vus } }, thresholds, setupTimeout: '300s', summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'p(99.9)', 'max'] };
}

/** setup(): the jobs that reads look for, submitted before the run; returns their ids by tenant. */
function prefill(plan) {
  const ids = {};
  for (let i = 0; i < (plan.scenario.reads ? plan.scenario.reads.prefill : 0); i++) {
    const arrival = prefillArrival(plan, i);
    const res = http.post(`${baseUrl}/v1/jobs`, JSON.stringify(arrival.body), params(plan, 'prefill', arrival.tenant));
    if (res.status === 202) (ids[arrival.tenant] ??= []).push(res.json('id'));
  }
  return { ids };
}

/** Jobs this VU knows by tenant (the prefilled ones and its own), and where its next list page starts. */
let known;
const cursors = {};

/** One arrival: the request the plan says arrival number iterationInTest makes. */
function iteration(plan, data) {
  known ??= JSON.parse(JSON.stringify(data.ids));
  const arrival = arrivalAt(plan, exec.scenario.iterationInTest);
  const tenant = arrival.tenant;
  const ids = known[tenant] ?? [];
  if (arrival.kind === 'submit') {
    const res = http.post(`${baseUrl}/v1/jobs`, JSON.stringify(arrival.body), params(plan, 'submit', tenant));
    if (res.status === 202) (known[tenant] ??= []).push(res.json('id'));
  } else if (arrival.kind === 'get' && ids.length > 0) {
    http.get(`${baseUrl}/v1/jobs/${ids[Math.floor(Math.random() * ids.length)]}`, params(plan, 'get', tenant));
  } else {
    // A list page, or a get before any job of the tenant is known (as the Node runner does).
    const cursor = cursors[tenant];
    const res = http.get(`${baseUrl}/v1/jobs?limit=${plan.scenario.reads.listLimit}${cursor ? `&cursor=${cursor}` : ''}`, params(plan, 'list', tenant));
    if (res.status === 200) cursors[tenant] = res.json('nextCursor') || undefined;
  }
}

/** Headers and tags of a request: `kind` and `tenant` tags split the metrics (and thresholds) by request kind. */
function params(plan, kind, tenant) {
  const p = { headers: { authorization: `Bearer ${tokenOf(plan, tenant, tokens)}`, 'content-type': 'application/json' }, tags: { kind, tenant } };
  if (plan.tenantConfigs[tenant].expectRateLimited) p.responseCallback = limitedIsExpected;
  return p;
}
