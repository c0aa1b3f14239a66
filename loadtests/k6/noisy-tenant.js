// k6 run loadtests/k6/noisy-tenant.js — the noisy-tenant scenario of loadtests/scenarios.json (see loadtests/README.md).
import { k6Scenario } from './lib.js';

const scenario = k6Scenario('noisy-tenant');
export const options = scenario.options;
export const setup = scenario.setup;
export default scenario.run;
