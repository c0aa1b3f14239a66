import type { FastifyInstance } from 'fastify';
import { DEFAULT_POLICY, type Policy } from '../src/core';
import { ConfigError } from '../src/lifecycle';
import type { Logger } from '../src/telemetry/logger';
import { systemClock, type Clock } from '../src/time';
import type { SchedulerConfig } from './config';
import { buildHttpApp } from './http/app';
import { SchedulerOperations } from './operations';
import { Scheduler } from './service';

/** A running scheduler: the service, its HTTP API and how to stop both. */
export interface RunningScheduler {
  scheduler: Scheduler;
  ops: SchedulerOperations;
  app: FastifyInstance;
  /** Base URL of the HTTP API. */
  url: string;
  close(): Promise<void>;
}

/** Starts the scheduler and its HTTP API (used by main, the demo and the tests). */
export async function runScheduler(config: SchedulerConfig, log: Logger, policy: Policy = DEFAULT_POLICY, clock: Clock = systemClock): Promise<RunningScheduler> {
  const scheduler = new Scheduler(config, log.child({ component: 'scheduler' }), policy, clock);
  await scheduler.start();
  const ops = new SchedulerOperations(scheduler);
  // The federation link serves the other sites through this site's operations.
  await scheduler.federation?.start(ops.federated.host());
  const app = await buildHttpApp(scheduler, ops, { log: log.child({ component: 'http' }), bodyLimitBytes: config.bodyLimitBytes });
  let address: string;
  try {
    address = await app.listen({ host: config.httpHost, port: config.httpPort });
  } catch (err) {
    // It campaigns for the pools only once it listens: stop what has started (NATS, the state), then say why.
    await scheduler.stop().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new ConfigError(`QY_HTTP_HOST, QY_HTTP_PORT: cannot listen on ${config.httpHost}:${config.httpPort}: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  log.info({ url: address }, 'scheduler API listening');
  await scheduler.campaign(address);
  return {
    scheduler,
    ops,
    app: app as unknown as FastifyInstance,
    url: address,
    async close() {
      await app.close();
      await scheduler.stop();
    },
  };
}
