// k6 run loadtests/k6/gang-heavy.js — the gang-heavy scenario of loadtests/scenarios.json (see loadtests/README.md).
import { k6Scenario } from './lib.js';

const scenario = k6Scenario('gang-heavy');
export const options = scenario.options;
export const setup = scenario.setup;
export default scenario.run;
