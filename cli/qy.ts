/**
 * `qy`: the command line for tenants and operators. Talks to the scheduler's HTTP API.
 * Server and token come from --server/--token or QY_SERVER/QY_TOKEN.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { SchedulerApiError, SchedulerClient, type JobQuery } from '../src/client';
import { CLIENT_ERROR_CODES, hashToken, historyRow, newToken, verifyChain, type HistoryRow, type JobSpecInput, type JobState, type JobView, type Pool, type UsageFigures } from '../src/protocol';
import { HISTORY_FORMATS, parseTimeArg, renderHistory, startOfToday } from './history';
import { formatBytes, formatCores, renderTable } from './table';

const program = new Command()
  .name('qy')
  .description('Qingyang scheduler command line')
  .option('--server <url>', 'scheduler URL (QY_SERVER)', process.env.QY_SERVER ?? 'http://127.0.0.1:8080')
  .option('--token <token>', 'API token (QY_TOKEN)', process.env.QY_TOKEN)
  .option('--json', 'print JSON instead of tables');

interface Globals {
  server: string;
  token?: string;
  json?: boolean;
}

let client: SchedulerClient | undefined;

/** The API client, made once the global options are parsed. A standby's redirect to the leader is told on stderr. */
function api(): SchedulerClient {
  const g = program.opts<Globals>();
  client ??= new SchedulerClient({
    url: g.server,
    token: g.token,
    connections: 1,
    onRedirect: (from, to) => process.stderr.write(`qy: ${from} is a standby; sending to the leader at ${to}\n`),
  });
  return client;
}

/** An error as qy reports it: the API's code and message, or why the server could not be reached. */
function describeError(err: unknown): string {
  if (!(err instanceof SchedulerApiError)) return err instanceof Error ? err.message : String(err);
  if (err.code === CLIENT_ERROR_CODES.unreachable) return `cannot reach ${err.details.url}: ${err.cause instanceof Error ? err.cause.message : err.message}`;
  if (err.code === CLIENT_ERROR_CODES.unknown) return `${err.statusCode}: ${err.details.responseText ?? ''}`;
  return `${err.code}: ${err.message}`;
}

function fail(message: string): never {
  process.stderr.write(`qy: ${message}\n`);
  process.exit(1);
}

function print(data: unknown, table: () => string): void {
  process.stdout.write(`${program.opts<Globals>().json ? JSON.stringify(data, null, 2) : table()}\n`);
}

const jobRow = (j: JobView) => [
  j.id,
  j.pool,
  j.state,
  j.tasks > 1 ? `${j.tasks}×` : '1',
  j.resources.gpus > 0 ? `${j.resources.gpus} gpu` : j.resources.gpuMilli > 0 ? `${j.resources.gpuMilli}m gpu` : `${formatCores(j.resources.cpuMillis)} cpu`,
  [...new Set(j.placement?.map((p) => p.nodeId) ?? [])].join(',') || '-',
  j.exitCode ?? '',
  j.state === 'pending' ? j.pendingReason : j.reason,
];

program
  .command('submit')
  .argument('<file>', 'job file, YAML or JSON (the body of POST /v1/jobs); - reads stdin')
  .option('--idempotency-key <key>', 'makes a retried submission return the same job')
  .description('submit a job')
  .action(async (file: string, opts: { idempotencyKey?: string }) => {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    let spec: unknown;
    try {
      spec = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      fail(`${file} is not valid YAML or JSON: ${(err as Error).message}`);
    }
    // The API validates the job and names what is wrong with it.
    const { id, state } = await api().submit(spec as JobSpecInput, { idempotencyKey: opts.idempotencyKey });
    print({ id, state }, () => `${id} ${state}`);
  });

program
  .command('get')
  .argument('<id>')
  .description('show a job')
  .action(async (id: string) => {
    const j = await api().job(id);
    print(j, () => {
      const lines = [
        `id:          ${j.id}${j.name ? ` (${j.name})` : ''}`,
        `state:       ${j.state}${j.exitCode !== undefined ? ` (exit ${j.exitCode})` : ''}${j.signal ? ` (${j.signal})` : ''}`,
        `pool:        ${j.pool}, priority ${j.priorityClass}, data ${j.dataClass}, ${j.tasks} task(s)`,
        `attempts:    ${j.attempts}/${j.maxAttempts}`,
      ];
      if (j.pendingReason) lines.push(`waiting:     ${j.pendingReason}`);
      if (j.reason) lines.push(`reason:      ${j.reason}`);
      lines.push(`submitted:   ${j.submittedAt}`);
      if (j.startedAt) lines.push(`started:     ${j.startedAt}`);
      if (j.finishedAt) lines.push(`finished:    ${j.finishedAt}`);
      if (j.placement) {
        lines.push('', renderTable(['TASK', 'NODE', 'CPU', 'MEM', 'GPUS', 'STATE', 'EXIT'], j.placement.map((p) => [p.taskIndex, p.nodeId, formatCores(p.cpuMillis), formatBytes(p.memBytes), p.gpuIndices.length ? `${p.gpuIndices.join(',')}${p.gpuMilliEach < 1000 ? ` @${p.gpuMilliEach}m` : ''}` : '-', p.state, p.exitCode])));
      }
      return lines.join('\n');
    });
  });

program
  .command('list')
  .option('--state <state>', 'only jobs in this state')
  .option('--pool <pool>', 'only jobs of this pool')
  .option('--limit <n>', 'page size', '100')
  .option('--all', 'follow pages to the end')
  .description('list jobs')
  .action(async (opts: { state?: string; pool?: string; limit: string; all?: boolean }) => {
    const items: JobView[] = [];
    for await (const page of api().jobPages({ limit: Number(opts.limit), state: opts.state as JobState | undefined, pool: opts.pool as Pool | undefined })) {
      items.push(...page);
      if (!opts.all) break;
    }
    print({ items }, () => renderTable(['ID', 'POOL', 'STATE', 'TASKS', 'ASKS', 'NODES', 'EXIT', 'REASON'], items.map(jobRow)));
  });

program
  .command('history')
  .description('job history in the style of sacct: jobs in the system during a window, finished ones from the accounting archive')
  .option('--tenant <name>', 'operators: one tenant (a tenant sees its own)')
  .option('--state <state>', 'only jobs in this state (succeeded, failed, cancelled, running, …)')
  .option('--pool <pool>', 'only jobs of this pool')
  .option('--since <time>', 'jobs not finished before this: now, an age (7d, 12h), a date or ISO time (default: midnight today)')
  .option('--until <time>', 'jobs submitted before this (default: now)')
  .option('-o, --output <format>', `${HISTORY_FORMATS.join(', ')}`, 'table')
  .action(async (opts: { tenant?: string; state?: string; pool?: string; since?: string; until?: string; output: string }) => {
    const format = HISTORY_FORMATS.find((f) => f === opts.output) ?? fail(`--output must be one of ${HISTORY_FORMATS.join(', ')}`);
    const nowMs = Date.now();
    const time = (text: string) => {
      try {
        return new Date(parseTimeArg(text, nowMs)).toISOString();
      } catch (err) {
        fail((err as Error).message);
      }
    };
    // State and pool go as given: the API checks them and says what it accepts.
    const filter: JobQuery = {
      tenant: opts.tenant,
      state: opts.state as JobState | undefined,
      pool: opts.pool as Pool | undefined,
      since: opts.since ? time(opts.since) : new Date(startOfToday(nowMs)).toISOString(),
      until: opts.until ? time(opts.until) : undefined,
    };
    const rows: HistoryRow[] = [];
    for await (const page of api().jobPages({ ...filter, limit: 1000 })) rows.push(...page.map((v) => historyRow(v, nowMs)));
    process.stdout.write(renderHistory(rows, program.opts<Globals>().json ? 'json' : format));
  });

program
  .command('cancel')
  .argument('<id>')
  .description('cancel a job')
  .action(async (id: string) => {
    const res = await api().cancel(id);
    print(res, () => `${res.id} ${res.state}`);
  });

program
  .command('log')
  .argument('<id>')
  .option('--task <n>', 'task index', '0')
  .option('--bytes <n>', 'how much of the end of the output', '16384')
  .description("show the tail of a job's output")
  .action(async (id: string, opts: { task: string; bytes: string }) => {
    const res = await api().jobLog(id, { task: Number(opts.task), bytes: Number(opts.bytes) });
    print(res, () => `${res.truncated ? '…\n' : ''}${res.text}`);
  });

program
  .command('nodes')
  .description('list nodes')
  .action(async () => {
    const items = await api().nodes();
    print({ items }, () =>
      renderTable(
        ['NODE', 'POOL', 'STATE', 'CPU', 'MEM', 'GPUS', 'TASKS', 'POWER', 'GREEN'],
        items.map((n) => [
          n.id + (n.draining ? ' (draining)' : ''),
          n.pool,
          n.state,
          `${formatCores(n.allocated.cpuMillis)}/${formatCores(n.allocatable.cpuMillis)}`,
          `${formatBytes(n.allocated.memBytes)}/${formatBytes(n.allocatable.memBytes)}`,
          n.allocatable.gpus > 0 ? `${n.allocated.gpuMilli / 1000}/${n.allocatable.gpus} ${n.gpuModel ?? ''}` : '-',
          n.tasks,
          `${Math.round(n.powerWatts)}W`,
          `${Math.round(n.greenShare * 100)}%`,
        ]),
      ),
    );
  });

program
  .command('pools')
  .description('capacity, allocation and queue per pool')
  .action(async () => {
    const items = await api().pools();
    print({ items }, () =>
      renderTable(
        ['POOL', 'NODES', 'CPU', 'MEM', 'GPUS', 'PENDING', 'RUNNING'],
        items.map((p) => [
          p.pool,
          `${p.nodes.ready} ready${p.nodes.cordoned ? `, ${p.nodes.cordoned} cordoned` : ''}${p.nodes.suspect ? `, ${p.nodes.suspect} suspect` : ''}${p.nodes.down ? `, ${p.nodes.down} down` : ''}`,
          `${formatCores(p.allocated.cpuMillis)}/${formatCores(p.capacity.cpuMillis)}`,
          `${formatBytes(p.allocated.memBytes)}/${formatBytes(p.capacity.memBytes)}`,
          `${p.allocated.gpuMilli / 1000}/${p.capacity.gpus}`,
          p.queue.pending,
          p.jobs.running + p.jobs.placed,
        ]),
      ),
    );
  });

program
  .command('green')
  .description('the green signal now, how wrong its forecast has been per horizon (- : not yet measured), and the jobs held for greener power')
  .option('--hours <h>', 'how far ahead the forecast goes', '24')
  .action(async (opts: { hours: string }) => {
    const hours = Number(opts.hours);
    if (!Number.isFinite(hours) || hours < 0) fail(`--hours: ${opts.hours} is not a number of hours`);
    const g = await api().green({ hours });
    const { signal, forecaster } = g;
    print(g, () =>
      [
        `signal:     ${Math.round(signal.gPerKwh)} gCO2/kWh (${signal.source}${signal.liveAgeSeconds === undefined ? '' : `, feed ${Math.round(signal.liveAgeSeconds)} s old${signal.liveStale ? ', stale' : ''}`}); grid ${Math.round(signal.gridGPerKwh)}`,
        `deferral:   ${g.deferral.enabled ? 'on' : 'off'}, ${g.deferred.length} job(s) held; may book ${g.pools.map((p) => `${p.pool} ${Math.round(p.deferralShare * 100)}%`).join(', ')}`,
        `forecaster: ${forecaster.name}${forecaster.observedSince ? `, learning since ${forecaster.observedSince}` : ', nothing observed yet'}`,
        renderTable(['AHEAD', ...forecaster.errors.map((e) => `${e.aheadHours}h`)], [['ERROR', ...forecaster.errors.map((e) => (e.gPerKwh === null ? '-' : Math.round(e.gPerKwh)))]]),
        ...(g.deferred.length > 0 ? ['', renderTable(['JOB', 'TENANT', 'POOL', 'PLANNED START', 'WHY'], g.deferred.map((d) => [d.name ? `${d.id} (${d.name})` : d.id, d.tenant, d.pool, d.plannedStartAt, d.reason]))] : []),
      ].join('\n'),
    );
  });

for (const [name, cordoned, summary] of [
  ['cordon', true, 'stop placing work on a node'],
  ['uncordon', false, 'place work on a node again (ends a drain)'],
] as const) {
  program
    .command(name)
    .argument('<node>')
    .description(summary)
    .action(async (node: string) => {
      const n = await api().cordon(node, cordoned);
      print(n, () => `${n.id} ${n.state}`);
    });
}

program
  .command('drain')
  .argument('<node>')
  .option('--requeue', 'stop its jobs now and queue them again')
  .description('cordon a node and let its jobs finish (or requeue them)')
  .action(async (node: string, opts: { requeue?: boolean }) => {
    const n = await api().drain(node, opts.requeue === true);
    print(n, () => `${n.id} ${n.state}, draining${n.requeued ? `, ${n.requeued} jobs requeued` : ''}`);
  });

program
  .command('remove-node')
  .argument('<node>')
  .description('forget a down node with nothing placed on it (its agent registering again brings it back)')
  .action(async (node: string) => {
    const n = await api().removeNode(node);
    print(n, () => `${n.id} removed (it was ${n.state})`);
  });

program
  .command('token')
  .description('print a new API token and the line that configures it in the tenants file (nothing is sent)')
  .option('--label <label>', 'what the token is for')
  .action((opts: { label?: string }) => {
    const token = newToken();
    const entry = { sha256: hashToken(token), ...(opts.label ? { label: opts.label } : {}) };
    print({ token, ...entry }, () => `token (give it to its owner; it is not stored anywhere):\n  ${token}\nfor the tenants file:\n  - sha256: ${entry.sha256}${opts.label ? `\n    label: ${opts.label}` : ''}`);
  });

program
  .command('tenants')
  .description('tenants with their quotas and what they use (operators: all; a tenant: itself)')
  .action(async () => {
    const items = await api().tenants();
    const limit = (v: number | undefined, f: (x: number) => string = String) => (v === undefined ? '∞' : f(v));
    print({ items }, () =>
      renderTable(
        ['TENANT', 'WEIGHT', 'POOL', 'CPU (used/quota)', 'GPUS', 'RUNNING', 'PENDING'],
        items.flatMap((t) =>
          t.pools.map((p) => [
            t.name,
            t.weight,
            p.pool,
            `${formatCores(p.used.cpuMillis)}/${limit(p.quota.cpuMillis, formatCores)}`,
            `${p.used.gpuMilli / 1000}/${limit(p.quota.gpus)}`,
            `${p.used.runningJobs}/${limit(p.quota.runningJobs)}`,
            `${p.used.pendingJobs}/${limit(p.quota.pendingJobs)}`,
          ]),
        ),
      ),
    );
  });

program
  .command('quota')
  .argument('<tenant>')
  .requiredOption('--pool <pool>', 'general, intelligent or super')
  .option('--cpu-millis <n>', 'CPU quota in milli-cores (none: unlimited)')
  .option('--gpus <n>', 'GPU quota')
  .option('--running-jobs <n>', 'jobs placed or running at once')
  .option('--pending-jobs <n>', 'jobs waiting at once')
  .description("set a tenant's quota in one pool (operators); limits not given are removed")
  .action(async (tenant: string, opts: { pool: string; cpuMillis?: string; gpus?: string; runningJobs?: string; pendingJobs?: string }) => {
    const current = await api().tenant(tenant);
    const quotas = Object.fromEntries(current.pools.map((p) => [p.pool, p.quota]));
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    quotas[opts.pool] = { cpuMillis: num(opts.cpuMillis), gpus: num(opts.gpus), runningJobs: num(opts.runningJobs), pendingJobs: num(opts.pendingJobs) };
    const updated = await api().setQuotas(tenant, quotas);
    print(updated, () => `${tenant} ${opts.pool}: ${JSON.stringify(updated.pools.find((p) => p.pool === opts.pool)?.quota ?? {})}`);
  });

program
  .command('usage')
  .description('metered usage in a period: core-hours, GPU-hours, energy, green share, carbon (a tenant sees its own)')
  .requiredOption('--period <period>', 'a month YYYY-MM or a day YYYY-MM-DD (cluster local time)')
  .option('--tenant <name>', 'operators: one tenant')
  .option('--pool <pool>', 'one pool')
  .option('--job <id>', 'one job')
  .action(async (opts: { period: string; tenant?: string; pool?: string; job?: string }) => {
    const usage = await api().usage({ period: opts.period, tenant: opts.tenant, pool: opts.pool as Pool | undefined, jobId: opts.job });
    const row = (name: string, f: UsageFigures) => [name, f.jobs, f.coreHours, Object.values(f.gpuHours).reduce((a, b) => a + b, 0), f.kWh, f.greenShare === null ? '-' : `${(f.greenShare * 100).toFixed(1)}%`, f.carbonKg];
    print(usage, () =>
      renderTable(
        ['TENANT / POOL', 'JOBS', 'CORE-H', 'GPU-H', 'KWH', 'GREEN', 'CO2 KG'],
        [...Object.entries(usage.byTenant).map(([t, f]) => row(t, f)), ...Object.entries(usage.byPool).map(([p, f]) => row(`pool ${p}`, f)), row('total', usage.total)],
      ),
    );
  });

program
  .command('bill <tenant> <period>')
  .description("a tenant's bill for a month or day, in fen (--csv for a spreadsheet)")
  .option('--csv', 'print CSV')
  .action(async (tenant: string, period: string, opts: { csv?: boolean }) => {
    if (opts.csv) return void process.stdout.write(await api().billCsv(tenant, period));
    const bill = await api().bill(tenant, period);
    print(bill, () =>
      renderTable(
        ['POOL', 'ITEM', 'QUANTITY', 'UNIT PRICE (FEN)', 'DISCOUNT', 'AMOUNT (FEN)'],
        [
          ...bill.lines.map((l) => [l.pool, [l.item, l.gpuModel, l.band].filter(Boolean).join(' '), `${l.quantity.value} ${l.quantity.unit}`, l.unitPriceFen, l.discountFen, l.amountFen]),
          ['total', '', '', '', bill.totals.discountFen, `${bill.totals.amountFen} (${bill.totals.amount} ${bill.currency})`],
        ],
      ),
    );
  });

program
  .command('disclosure <period>')
  .description('the disclosure report of a period (operators): JSON, or Markdown with --markdown')
  .option('--markdown', 'print Markdown for publication')
  .action(async (period: string, opts: { markdown?: boolean }) => {
    process.stdout.write(opts.markdown ? await api().disclosureMarkdown(period) : `${JSON.stringify(await api().disclosure(period), null, 2)}\n`);
  });

const audit = program.command('audit').description('the audit log (operators)');
audit
  .command('list', { isDefault: true })
  .option('--action <action>', 'e.g. job.submit, node.cordon, auth.failed')
  .option('--actor <name>', 'a tenant, an operator or an address')
  .option('--target <target>', 'a job, node or tenant')
  .option('--limit <n>', 'most records', '100')
  .description('list audit records, oldest first')
  .action(async (opts: { action?: string; actor?: string; target?: string; limit: string }) => {
    const items = await api().auditRecords({ limit: Number(opts.limit), action: opts.action, actor: opts.actor, target: opts.target });
    print({ items }, () => renderTable(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME'], items.map((r) => [r.seq, new Date(r.atMs).toISOString(), `${r.actor.kind}:${r.actor.name}`, r.action, r.target, r.outcome])));
  });
audit
  .command('verify')
  .description('check the hash chain of the whole audit log; names the first altered or missing record')
  .action(async () => {
    const records = await api().allAuditRecords();
    const verdict = verifyChain(records);
    if (verdict.ok) print(verdict, () => `audit chain intact: ${verdict.records} records, last hash ${verdict.lastHash}`);
    else {
      print(verdict, () => `audit chain BROKEN: ${verdict.problem}`);
      process.exit(2);
    }
  });

try {
  await program.parseAsync();
} catch (err) {
  fail(describeError(err));
} finally {
  await client?.close();
}
