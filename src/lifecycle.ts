import type { z } from 'zod';
import type { Logger } from './telemetry/logger';

/**
 * A setting the operator has to fix: an environment variable, a flag, or a file one of them names. Its
 * message says what is wrong and where, so a program that cannot start because of one says so in a line,
 * without a stack (see {@link runProgram}).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Runs `load`, reading a file that the setting `setting` names; any failure becomes a ConfigError naming the setting. */
export function fromSetting<T>(setting: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError && err.message.startsWith(`${setting}:`)) throw err;
    throw new ConfigError(`${setting}: ${(err as Error).message}`, { cause: err });
  }
}

/** Exit status of a program refused by its configuration (a usage error, as for a bad flag). */
export const EXIT_CONFIG = 2;

/**
 * Runs a program's start-up and says why on stderr when it fails, then exits: a {@link ConfigError} as one
 * line naming what to fix, with status {@link EXIT_CONFIG}; anything else, a fault of the program or of
 * what it runs on, with its stack and status 1. Resolves with what `start` returned.
 */
export async function runProgram<T>(program: string, start: () => Promise<T> | T): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${program}: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    process.stderr.write(`${program}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  }
}

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
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
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
