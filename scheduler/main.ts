/**
 * The scheduler service: `npm run scheduler` (configuration from QY_* environment variables, see README).
 */
import { createLogger } from '../src/telemetry/logger';
import { loadSchedulerConfig } from './config';
import { runScheduler } from './run';

const config = loadSchedulerConfig();
const log = createLogger({ name: 'qy-scheduler', level: config.logLevel, pretty: config.logPretty });
const running = await runScheduler(config, log);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    running.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}
