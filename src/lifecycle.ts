import type { z } from 'zod';
import type { Logger } from './telemetry/logger';

/**
 * Reads a configuration from environment variables (`envNames`: setting → variable) with overrides
 * (command-line flags, tests) on top; throws one error naming every bad variable.
 */
export function loadEnvConfig<S extends z.ZodType<object>>(schema: S, envNames: Record<string, string>, env: NodeJS.ProcessEnv, overrides: Record<string, unknown>): z.infer<S> {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(envNames)) if (env[name] !== undefined && env[name] !== '') raw[key] = env[name];
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) raw[key] = value;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${envNames[String(i.path[0])] ?? i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** On SIGINT or SIGTERM (the first one only), runs `stop` and exits 0, or 1 if stopping failed. */
export function stopOnSignals(log: Logger, stop: () => Promise<unknown>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'stop failed');
          process.exit(1);
        },
      );
    });
  }
}
