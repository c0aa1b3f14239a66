/**
 * The scheduler service: `npm run scheduler` (configuration from QY_* environment variables, see README).
 */
import { runProgram, stopOnSignals } from '../src/lifecycle';
import { createLogger } from '../src/telemetry/logger';
import { loadSchedulerConfig } from './config';
import { runScheduler } from './run';

const { log, running } = await runProgram('qy-scheduler', async () => {
  const config = loadSchedulerConfig();
  const log = createLogger({ name: 'qy-scheduler', level: config.logLevel, pretty: config.logPretty });
  return { log, running: await runScheduler(config, log) };
});

stopOnSignals(log, () => running.close());
// SIGHUP: the tenants file again (a revoked token, a new tenant), as daemons reload their configuration.
process.on('SIGHUP', () => running.scheduler.reloadTenants('signal'));
