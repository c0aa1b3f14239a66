/**
 * The scheduler service: `npm run scheduler` (configuration from QY_* environment variables, see README);
 * `npm run scheduler -- --check` validates that configuration and the files it names, and exits.
 */
import { Command } from 'commander';
import { runProgram, stopOnSignals } from '../src/lifecycle';
import { natsConnectionAuth } from '../src/store/nats-options';
import { createLogger } from '../src/telemetry/logger';
import { loadSchedulerConfig } from './config';
import { runScheduler } from './run';
import { Scheduler } from './service';

const flags = new Command()
  .name('qy-scheduler')
  .description('Qingyang scheduler: the HTTP API, placement and the job log. Configured by QY_* environment variables (README, "Configuration").')
  .option('--check', 'validate the configuration (the variables and every file they name: tenants, prices, federation, carbon) and exit: 0 when it would start, 2 with what to fix')
  .parse()
  .opts<{ check?: boolean }>();

if (flags.check) {
  await runProgram('qy-scheduler', () => {
    const config = loadSchedulerConfig();
    // Building the service reads and validates every file; it connects to nothing until started.
    const scheduler = new Scheduler(config, createLogger({ name: 'qy-scheduler', level: 'silent' }));
    natsConnectionAuth(config); // reads the nkey seed file, if one is named
    const file = scheduler.tenants.file;
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    process.stdout.write(`qy-scheduler: configuration OK (${count(file.tenants.length, 'tenant')} and ${count(file.operators.length, 'operator')} from ${config.tenantsFile}; NATS ${config.natsUrl}; HTTP ${config.httpHost}:${config.httpPort})\n`);
  });
  process.exit(0);
}

// SIGHUP: the tenants file again (a revoked token, a new tenant), as daemons reload their configuration. Taken
// from the start (its default action would end the process); one that comes while starting is served once up.
let reloadTenants: (() => void) | undefined;
let hupWhileStarting = false;
process.on('SIGHUP', () => (reloadTenants ? reloadTenants() : (hupWhileStarting = true)));

const { log, running } = await runProgram('qy-scheduler', async () => {
  const config = loadSchedulerConfig();
  const log = createLogger({ name: 'qy-scheduler', level: config.logLevel, pretty: config.logPretty });
  return { log, running: await runScheduler(config, log) };
});

stopOnSignals(log, () => running.close());
reloadTenants = () => running.scheduler.reloadTenants('signal');
if (hupWhileStarting) reloadTenants();
