/**
 * The scheduling cycle's defaults, named once: the service's configuration starts from them and the
 * simulator's policies use them, so a simulated "service default" is the one the service runs.
 */
/** Waiting this long counts as much as a whole dominant share in the fair-share order (aging). */
export const DEFAULT_AGING_MS = 600_000;
/** Placements a job may lose to failures before it fails for good. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** The storm guard: a job is preempted at most this many times per hour. */
export const DEFAULT_PREEMPTION_MAX_PER_HOUR = 3;
/** EASY look-ahead: placement attempts a backfilling pool makes at most per cycle (Slurm's bf_max_job_test). */
export const DEFAULT_BACKFILL_DEPTH = 500;
