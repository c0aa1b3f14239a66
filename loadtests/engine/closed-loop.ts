/**
 * C closed-loop clients over `total` requests: each client sends the next request only once its last one
 * is answered (as `sbatch` users and a task starter do), so the rate is what the system under test allows.
 * The loop is the project's one bounded fan-out (src/concurrency.ts).
 */
export { runLimited as runClosedLoop } from '../../src/concurrency';
