/**
 * The load engine: the open-model dispatch loop and the latency histograms, written once for the scenario
 * runner (`npm run loadtest`), bench:e2e and bench:failover.
 */
export { arrivalsBy, constantProfile, runOpenModel, type OpenModelOptions, type OpenModelProgress, type OpenModelRun, type RateProfile } from './open-model';
/**
 * C closed-loop clients over `total` requests: each client sends the next request only once its last one is
 * answered (as `sbatch` users and a task starter do), so the rate is what the system under test allows. The
 * project's one bounded fan-out.
 */
export { runLimited as runClosedLoop } from '../../src/concurrency';
export { latencyHistogram, percentileMs, recordSince, round2, type Histogram } from './histogram';
