/**
 * The scheduler service: `npm run scheduler` (configuration from QY_* environment variables, see README).
 */
import { stopOnSignals } from '../src/lifecycle';
import { createLogger } from '../src/telemetry/logger';
import { loadSchedulerConfig } from './config';
import { runScheduler } from './run';

const config = loadSchedulerConfig();
const log = createLogger({ name: 'qy-scheduler', level: config.logLevel, pretty: config.logPretty });
const running = await runScheduler(config, log);

stopOnSignals(log, () => running.close());
