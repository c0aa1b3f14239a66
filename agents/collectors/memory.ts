import { freemem, totalmem } from 'node:os';

/** Memory in use, in bytes (total minus what the kernel reports available). */
export function memUsedBytes(): number {
  return Math.max(0, totalmem() - freemem());
}
