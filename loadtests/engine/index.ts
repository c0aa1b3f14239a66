/**
 * The load engine: the open-model dispatch loop and the latency histograms, written once for the scenario
 * runner (`npm run loadtest`), bench:e2e and bench:failover.
 */
export { arrivalsBy, constantProfile, runOpenModel, type OpenModelOptions, type OpenModelProgress, type OpenModelRun, type RateProfile } from './open-model';
export { runClosedLoop } from './closed-loop';
export { latencyHistogram, percentileMs, recordSince, round2, type Histogram } from './histogram';
