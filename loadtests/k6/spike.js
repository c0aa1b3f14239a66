// k6 run loadtests/k6/spike.js — the spike scenario of loadtests/scenarios.json (see loadtests/README.md).
import { k6Scenario } from './lib.js';

const scenario = k6Scenario('spike');
export const options = scenario.options;
export const setup = scenario.setup;
export default scenario.run;
