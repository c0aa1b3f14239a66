/**
 * What each arrival of a load-test scenario does — which request, as which tenant, with which job body — as a
 * pure function of loadtests/scenarios.json and the arrival's sequence number. Plain JavaScript without
 * imports, shared by the k6 scripts (lib.js) and the Node runner (scenarios.ts), so that both send the same
 * requests for the same scenario. Types: templates.d.ts.
 */

const GiB = 1024 ** 3;

/**
 * The names of `weights` in smooth weighted round-robin order (nginx's): each name appears as often as its
 * weight, spread out rather than in runs, so a short run or a slice of a long one still has the right mix.
 */
export function weightedCycle(weights) {
  const names = Object.keys(weights);
  const total = names.reduce((sum, name) => sum + weights[name], 0);
  const credit = names.map(() => 0);
  const cycle = [];
  for (let n = 0; n < total; n++) {
    names.forEach((name, i) => (credit[i] += weights[name]));
    const best = credit.indexOf(Math.max(...credit));
    credit[best] -= total;
    cycle.push(names[best]);
  }
  return cycle;
}

/** The body of POST /v1/jobs for a job template of scenarios.json: cores and GiB become the API's units. */
export function jobBody(template, name) {
  const { cpuCores, memGiB, gpus, ...rest } = template;
  const resources = { cpuMillis: Math.round(cpuCores * 1000), memBytes: Math.round(memGiB * GiB) };
  if (gpus) resources.gpus = gpus;
  return { name, ...rest, resources };
}

/** A scenario of `file` with its request, template and tenant cycles worked out once, for arrivalAt. */
export function compileScenario(file, name) {
  const scenario = file.scenarios[name];
  if (!scenario) throw new Error(`unknown scenario ${name}; scenarios: ${Object.keys(file.scenarios).join(', ')}`);
  const kinds = weightedCycle(scenario.requests);
  // submitsBefore[i]: how many of the first i arrivals of a request cycle are submissions.
  const submitsBefore = [0];
  for (const kind of kinds) submitsBefore.push(submitsBefore[submitsBefore.length - 1] + (kind === 'submit' ? 1 : 0));
  return {
    name,
    scenario,
    templates: file.templates,
    tenantConfigs: file.tenants,
    tenantNames: Object.keys(scenario.tenants),
    kinds,
    submitsBefore,
    templateCycle: weightedCycle(scenario.mix),
    tenantCycle: weightedCycle(scenario.tenants),
  };
}

/**
 * The `ordinal`-th job a scenario submits. Templates follow the mix by submission rather than by arrival,
 * so that reads interleaved with submissions do not skew which templates are sent.
 */
export function submitBody(plan, ordinal) {
  const template = plan.templateCycle[ordinal % plan.templateCycle.length];
  return jobBody(plan.templates[template], `${plan.name}-${ordinal}`);
}

/** What arrival number `seq` (from 0) does: `{ kind, tenant, body }`, with a body for submissions only. */
export function arrivalAt(plan, seq) {
  const kind = plan.kinds[seq % plan.kinds.length];
  const tenant = plan.tenantCycle[seq % plan.tenantCycle.length];
  if (kind !== 'submit') return { kind, tenant };
  const cycles = Math.floor(seq / plan.kinds.length);
  const ordinal = cycles * plan.submitsBefore[plan.kinds.length] + plan.submitsBefore[seq % plan.kinds.length];
  return { kind, tenant, body: submitBody(plan, ordinal) };
}

/** The `i`-th of the jobs submitted before a run for reads to find (`reads.prefill` of them), tenants in turn. */
export function prefillArrival(plan, i) {
  return { kind: 'submit', tenant: plan.tenantCycle[i % plan.tenantCycle.length], body: submitBody(plan, i) };
}

/** The token of a scenario's tenant from a list given in the order of its `tenants`, reused round-robin when short. */
export function tokenOf(plan, tenant, tokens) {
  return tokens[plan.tenantNames.indexOf(tenant) % tokens.length];
}
