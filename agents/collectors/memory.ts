import { freemem, totalmem } from 'node:os';

/** The machine's memory does not change while the agent runs: read once (each read is a pass over /proc/meminfo). */
const TOTAL_BYTES = totalmem();

/** Memory in use, in bytes (total minus what the kernel reports available). */
export function memUsedBytes(): number {
  return Math.max(0, TOTAL_BYTES - freemem());
}
