import pino, { type Logger } from 'pino';

export type { Logger };

/** Log levels accepted by QY_LOG_LEVEL. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The process logger: JSON lines (pino) by default, human-readable when `pretty` (the demo).
 * Components take a child logger with their name; request, job and node ids go in as fields.
 */
export function createLogger(options: { level: string; pretty?: boolean; name: string }): Logger {
  return pino({
    name: options.name,
    level: options.level,
    transport: options.pretty ? { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } : undefined,
  });
}
