// k6 run loadtests/k6/steady.js — the steady scenario of loadtests/scenarios.json (see loadtests/README.md).
import { k6Scenario } from './lib.js';

const scenario = k6Scenario('steady');
export const options = scenario.options;
export const setup = scenario.setup;
export default scenario.run;
