/**
 * Failover benchmark, the failover scenario of the load engine (loadtests/failover.ts): nats-server, two
 * scheduler replicas (a leader and a standby) and an agent of virtual nodes, each a separate process; the
 * load engine submits jobs at a steady rate through a SchedulerClient that follows the leader (a standby's
 * X-Qy-Leader; on a connection error or a 503 it tries again with backoff, with the same Idempotency-Key);
 * after a while the leader is killed with SIGKILL.
 *
 *   npm run bench:failover                                   # 100 jobs/s, kill after 5 s, 15 s/10 s/2 s lease
 *   npm run bench:failover -- --lease-ms 5000 --renew-deadline-ms 3000 --retry-ms 500
 *   npm run bench:failover -- --fault pause        # SIGSTOP the leader past its lease, then wake it up
 *   npm run bench:failover -- --history 200000    # first 200,000 finished jobs of history, archived and let go
 *
 * Prints the takeover time (kill → the standby answers as leader), the longest gap in placements across the
 * kill (from the job log), and whether any acknowledged job was lost or ran twice. The final line is JSON:
 * {"takeoverMs":...,"placementGapMs":...,"acked":...,"lost":0,"duplicates":0,...}.
 */
import { Command } from 'commander';
import { runFailoverScenario } from '../loadtests/failover';
import { DEFAULT_LEASE_TIMINGS } from '../src/store/lease';
import { createLogger } from '../src/telemetry/logger';

const program = new Command()
  .name('bench:failover')
  .option('--rate <n>', 'steady submission rate, jobs per second', '100')
  .option('--before <s>', 'seconds of load before the kill', '5')
  .option('--after <s>', 'seconds of load after the kill', '25')
  .option('--nodes <n>', 'virtual nodes', '50')
  .option('--job-seconds <s>', 'run time of each job (whole seconds)', '1')
  .option('--lease-ms <ms>', 'lease duration (QY_LEASE_DURATION_MS)', String(DEFAULT_LEASE_TIMINGS.leaseDurationMs))
  .option('--renew-deadline-ms <ms>', 'renew deadline (QY_LEASE_RENEW_DEADLINE_MS)', String(DEFAULT_LEASE_TIMINGS.renewDeadlineMs))
  .option('--retry-ms <ms>', 'retry period (QY_LEASE_RETRY_MS)', String(DEFAULT_LEASE_TIMINGS.retryPeriodMs))
  .option('--history <n>', 'finished jobs written to the job log first (with an archive in PostgreSQL; taken in before the load)', '0')
  .option('--fault <kind>', 'kill (kill -9 of the leader) or pause (SIGSTOP until the standby leads, then SIGCONT)', 'kill')
  .parse();
const opts = program.opts();
const log = createLogger({ name: 'bench:failover', level: 'info', pretty: true });

const lease = { durationMs: Number(opts.leaseMs), renewDeadlineMs: Number(opts.renewDeadlineMs), retryMs: Number(opts.retryMs) };
process.stderr.write(`failover: ${Number(opts.history) > 0 ? `${opts.history} jobs of history, then ` : ''}${opts.rate} jobs/s, ${opts.fault === 'pause' ? 'SIGSTOP' : 'kill -9'} of the leader after ${opts.before} s, lease ${lease.durationMs}/${lease.renewDeadlineMs}/${lease.retryMs} ms…\n`);
const r = await runFailoverScenario({
  rate: Number(opts.rate),
  beforeKillSeconds: Number(opts.before),
  afterKillSeconds: Number(opts.after),
  nodes: Number(opts.nodes),
  jobSeconds: Number(opts.jobSeconds),
  lease,
  drainTimeoutMs: 120_000,
  fault: opts.fault === 'pause' ? 'pause' : 'kill',
  history: Number(opts.history),
  log,
});

console.log(`
takeover (fault → standby leads)     ${r.takeoverMs} ms   (lease ${lease.durationMs} ms)
longest gap in placements            ${r.placementGapMs} ms
acknowledged jobs                    ${r.acked}
  lost                               ${r.lost}
  duplicated or run twice            ${r.duplicates}
terms                                ${r.termBefore} → ${r.termAfter}
late writes of the old leader fenced ${r.fencedEvents}${r.oldLeaderRole ? `\nold leader after waking up           ${r.oldLeaderRole}` : ''}
client retries during the failover   ${r.retries}
standby's answer to a write          ${r.standbyRefusal.status} ${r.standbyRefusal.code} (X-Qy-Leader: ${r.standbyRefusal.leaderHeader})`);
console.log(JSON.stringify({ historyJobs: Number(opts.history), takeoverMs: r.takeoverMs, placementGapMs: r.placementGapMs, acked: r.acked, lost: r.lost, duplicates: r.duplicates, leaseMs: lease.durationMs, rate: Number(opts.rate), termBefore: r.termBefore, termAfter: r.termAfter, fault: opts.fault, fencedEvents: r.fencedEvents }));
process.exit(r.lost === 0 && r.duplicates === 0 ? 0 : 1);
