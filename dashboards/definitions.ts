/**
 * The Grafana dashboards, defined once here and written to dashboards/*.json by `npm run dashboards`.
 * A test checks the JSON files are up to date, and another runs every query of every panel against a real
 * Prometheus (and the InfluxDB panel against a real InfluxDB).
 */

/** One query of a panel. */
export interface Query {
  expr: string;
  legend?: string;
  /** InfluxQL instead of PromQL. */
  influx?: boolean;
}

export interface PanelDef {
  title: string;
  description: string;
  type: 'timeseries' | 'stat' | 'gauge' | 'bargauge';
  unit: string;
  queries: Query[];
  /** Grid width (of 24) and height. */
  w?: number;
  h?: number;
  min?: number;
  max?: number;
}

export interface VariableDef {
  name: string;
  label: string;
  /** label_values(...) query. */
  query: string;
  multi: boolean;
}

export interface DashboardDef {
  uid: string;
  title: string;
  description: string;
  file: string;
  variables: VariableDef[];
  panels: PanelDef[];
}

const poolVar: VariableDef = { name: 'pool', label: 'Pool', query: 'label_values(qy_nodes, pool)', multi: true };

export const DASHBOARDS: DashboardDef[] = [
  {
    uid: 'qy-cluster-overview',
    title: 'Qingyang / Cluster overview',
    description: 'Utilisation, queues, throughput and placement latency of the three pools.',
    file: 'cluster-overview.json',
    variables: [poolVar],
    panels: [
      { title: 'Ready nodes', description: 'Nodes that take new work, per pool.', type: 'stat', unit: 'short', w: 6, queries: [{ expr: 'sum by (pool) (qy_nodes{state="ready", pool=~"$pool"})', legend: '{{pool}}' }] },
      { title: 'Nodes by state', description: 'Ready, cordoned, suspect (heartbeats missing) and down nodes.', type: 'bargauge', unit: 'short', w: 6, queries: [{ expr: 'sum by (state) (qy_nodes{pool=~"$pool"})', legend: '{{state}}' }] },
      { title: 'Pending jobs', description: 'Jobs waiting in the queue, per pool.', type: 'stat', unit: 'short', w: 6, queries: [{ expr: 'sum by (pool) (qy_jobs_pending{pool=~"$pool"})', legend: '{{pool}}' }] },
      { title: 'Jobs holding a placement', description: 'Placed or running jobs, per pool.', type: 'stat', unit: 'short', w: 6, queries: [{ expr: 'qy_jobs_running{pool=~"$pool"}', legend: '{{pool}}' }] },
      { title: 'CPU allocated', description: 'Share of the pool’s allocatable CPU given to jobs.', type: 'timeseries', unit: 'percentunit', min: 0, max: 1, w: 8, queries: [{ expr: 'pool:qy_cpu_utilisation:ratio{pool=~"$pool"}', legend: '{{pool}}' }] },
      { title: 'GPUs allocated', description: 'Share of the pool’s GPUs given to jobs (GPU shares count as fractions).', type: 'timeseries', unit: 'percentunit', min: 0, max: 1, w: 8, queries: [{ expr: 'pool:qy_gpu_utilisation:ratio{pool=~"$pool"}', legend: '{{pool}}' }] },
      { title: 'Memory allocated', description: 'Share of the pool’s allocatable memory given to jobs.', type: 'timeseries', unit: 'percentunit', min: 0, max: 1, w: 8, queries: [{ expr: 'pool:qy_memory_utilisation:ratio{pool=~"$pool"}', legend: '{{pool}}' }] },
      { title: 'Queue length', description: 'Jobs waiting, per pool and priority class.', type: 'timeseries', unit: 'short', w: 12, queries: [{ expr: 'sum by (pool, priority_class) (qy_jobs_pending{pool=~"$pool"})', legend: '{{pool}} {{priority_class}}' }] },
      {
        title: 'Throughput',
        description: 'Placements and job ends per second.',
        type: 'timeseries',
        unit: 'ops',
        w: 12,
        queries: [
          { expr: 'pool:qy_jobs_placed:rate1m{pool=~"$pool"}', legend: 'placed {{pool}}' },
          { expr: 'sum by (pool, outcome) (pool:qy_jobs_finished:rate1m{pool=~"$pool"})', legend: '{{outcome}} {{pool}}' },
        ],
      },
      {
        title: 'Placement latency',
        description: 'Time of one placement decision, median and 99th percentile (microseconds are normal).',
        type: 'timeseries',
        unit: 's',
        w: 12,
        queries: [
          { expr: 'pool:qy_placement_duration_seconds:p50_1m{pool=~"$pool"}', legend: 'p50 {{pool}}' },
          { expr: 'pool:qy_placement_duration_seconds:p99_1m{pool=~"$pool"}', legend: 'p99 {{pool}}' },
        ],
      },
      { title: 'Scheduler replicas', description: 'Which replica leads each pool (1) and which stand by (0), and each pool’s leadership term, which rises at every failover.', type: 'timeseries', unit: 'short', w: 12, queries: [{ expr: 'qy_scheduler_leader{pool=~"$pool"} == 1', legend: '{{pool}} led by {{instance}}' }, { expr: 'max by (pool) (qy_scheduler_term{pool=~"$pool"})', legend: '{{pool}} term' }] },
      { title: 'Submit to running, p99', description: 'From submission to the first task reported running.', type: 'timeseries', unit: 's', w: 12, queries: [{ expr: 'pool:qy_submit_to_running_seconds:p99_5m{pool=~"$pool"}', legend: '{{pool}}' }] },
      {
        title: 'Why jobs wait',
        description: 'Placement attempts that did not place the job, by main reason, per second.',
        type: 'timeseries',
        unit: 'ops',
        w: 24,
        queries: [{ expr: 'sum by (reason) (rate(qy_placement_failures_total{pool=~"$pool"}[$__rate_interval]))', legend: '{{reason}}' }],
      },
    ],
  },
  {
    uid: 'qy-green-power',
    title: 'Qingyang / Green power',
    description: 'Power drawn by the cluster and how green it is: energy, carbon and the power budget.',
    file: 'green-power.json',
    variables: [poolVar],
    panels: [
      { title: 'Cluster power', description: 'Power drawn by all nodes, from their last heartbeats.', type: 'stat', unit: 'watt', w: 6, queries: [{ expr: 'sum(qy_pool_power_watts)' }] },
      { title: 'Green share', description: 'Share of the energy of the last 5 minutes from renewable sources.', type: 'gauge', unit: 'percentunit', min: 0, max: 1, w: 6, queries: [{ expr: 'cluster:qy_green_power_share:ratio_5m' }] },
      { title: 'Carbon now', description: 'CO2 emitted by grid (non-green) electricity, grams per hour, at the configured grid intensity.', type: 'stat', unit: 'massg', w: 6, queries: [{ expr: 'cluster:qy_carbon_grams:rate5m * 3600' }] },
      { title: 'Energy in the period', description: 'Electrical energy drawn during the dashboard’s time range.', type: 'stat', unit: 'joule', w: 6, queries: [{ expr: 'sum(increase(qy_energy_joules_total[$__range]))' }] },
      { title: 'Power per pool', description: 'Power drawn by each pool.', type: 'timeseries', unit: 'watt', w: 12, queries: [{ expr: 'qy_pool_power_watts{pool=~"$pool"}', legend: '{{pool}}' }] },
      {
        title: 'Power and budget',
        description: 'Power drawn against the pool’s configured cap (QY_POWER_BUDGETS_KW).',
        type: 'timeseries',
        unit: 'watt',
        w: 12,
        queries: [
          { expr: 'qy_pool_power_watts{pool=~"$pool"} and on(pool) qy_pool_power_budget_watts', legend: 'drawn {{pool}}' },
          { expr: 'qy_pool_power_budget_watts{pool=~"$pool"}', legend: 'budget {{pool}}' },
        ],
      },
      {
        title: 'Green and grid power',
        description: 'Average power over the interval, split into renewable and grid electricity.',
        type: 'timeseries',
        unit: 'watt',
        w: 12,
        queries: [
          { expr: 'sum(rate(qy_green_energy_joules_total{pool=~"$pool"}[$__rate_interval]))', legend: 'green' },
          { expr: 'sum(rate(qy_energy_joules_total{pool=~"$pool"}[$__rate_interval])) - sum(rate(qy_green_energy_joules_total{pool=~"$pool"}[$__rate_interval]))', legend: 'grid' },
        ],
      },
      { title: 'Green share per pool', description: 'Share of each pool’s energy of the last 5 minutes from renewable sources.', type: 'timeseries', unit: 'percentunit', min: 0, max: 1, w: 12, queries: [{ expr: 'pool:qy_green_power_share:ratio_5m{pool=~"$pool"}', legend: '{{pool}}' }] },
      { title: 'Green share per node', description: 'Share of green electricity each node last reported.', type: 'bargauge', unit: 'percentunit', min: 0, max: 1, w: 12, queries: [{ expr: 'qy_node_green_share_ratio{pool=~"$pool"}', legend: '{{node}}' }] },
      { title: 'Grid carbon intensity', description: 'gCO2 per kWh of grid electricity in force.', type: 'stat', unit: 'short', w: 12, queries: [{ expr: 'qy_grid_carbon_intensity_grams_per_kwh' }] },
      {
        title: 'Green forecast error',
        description: 'Recent mean absolute error of the green forecaster this far ahead (gCO2/kWh); green deferral waits only for savings above twice it.',
        type: 'timeseries',
        unit: 'short',
        w: 12,
        queries: [{ expr: 'max by (ahead_hours) (qy_green_forecast_error_g_per_kwh{ahead_hours=~"1|6|12|24"})', legend: '{{ahead_hours}} h ahead' }],
      },
      {
        title: 'Carbon feed and published forecast',
        description: 'Age of the live carbon feed’s last reading (past QY_CARBON_STALE_MS the signal falls back), and how far ahead the published forecast reaches (0: run out).',
        type: 'timeseries',
        unit: 's',
        w: 12,
        queries: [
          { expr: 'max(qy_green_signal_age_seconds)', legend: 'feed reading age' },
          { expr: 'max(qy_green_published_forecast_ahead_seconds)', legend: 'published forecast reach' },
        ],
      },
      {
        title: 'Energy history (InfluxDB)',
        description: 'Long-range hourly mean power per pool, from the telemetry downsampled in InfluxDB (retention policy long_term).',
        type: 'timeseries',
        unit: 'watt',
        w: 24,
        queries: [{ influx: true, expr: 'SELECT mean("power_watts") FROM "long_term"."pool_power_1h" WHERE $timeFilter GROUP BY time($__interval), "pool" fill(none)', legend: '$tag_pool' }],
      },
    ],
  },
  {
    uid: 'qy-tenants',
    title: 'Qingyang / Tenants',
    description: 'Usage, queues, fair share, quotas and waits of each tenant (paired city).',
    file: 'tenants.json',
    variables: [{ name: 'tenant', label: 'Tenant', query: 'label_values(qy_tenant_jobs_running, tenant)', multi: true }, poolVar],
    panels: [
      { title: 'CPU in use', description: 'CPU cores allocated to each tenant’s jobs.', type: 'timeseries', unit: 'short', w: 12, queries: [{ expr: 'sum by (tenant) (qy_tenant_allocated_cpu_cores{tenant=~"$tenant", pool=~"$pool"})', legend: '{{tenant}}' }] },
      { title: 'GPUs in use', description: 'GPUs allocated to each tenant’s jobs.', type: 'timeseries', unit: 'short', w: 12, queries: [{ expr: 'sum by (tenant) (qy_tenant_allocated_gpus{tenant=~"$tenant", pool=~"$pool"})', legend: '{{tenant}}' }] },
      { title: 'Running jobs', description: 'Jobs of each tenant holding a placement.', type: 'timeseries', unit: 'short', w: 8, queries: [{ expr: 'sum by (tenant) (qy_tenant_jobs_running{tenant=~"$tenant", pool=~"$pool"})', legend: '{{tenant}}' }] },
      { title: 'Queued jobs', description: 'Jobs of each tenant waiting.', type: 'timeseries', unit: 'short', w: 8, queries: [{ expr: 'sum by (tenant) (qy_tenant_jobs_pending{tenant=~"$tenant", pool=~"$pool"})', legend: '{{tenant}}' }] },
      { title: 'Submissions', description: 'Jobs submitted per second.', type: 'timeseries', unit: 'ops', w: 8, queries: [{ expr: 'sum by (tenant) (rate(qy_jobs_submitted_total{tenant=~"$tenant", pool=~"$pool"}[$__rate_interval]))', legend: '{{tenant}}' }] },
      { title: 'Fair share', description: 'Each tenant’s dominant share of the pool (its largest share of CPU, memory or GPUs), which orders the queue.', type: 'timeseries', unit: 'percentunit', min: 0, max: 1, w: 12, queries: [{ expr: 'qy_tenant_dominant_share_ratio{tenant=~"$tenant", pool=~"$pool"}', legend: '{{tenant}} {{pool}}' }] },
      {
        title: 'Quota use',
        description: 'Allocated against quota, for tenants with a CPU or GPU quota in the pool.',
        type: 'bargauge',
        unit: 'percentunit',
        min: 0,
        max: 1,
        w: 12,
        queries: [
          { expr: 'tenant:qy_cpu_quota_use:ratio{tenant=~"$tenant", pool=~"$pool"}', legend: 'CPU {{tenant}} {{pool}}' },
          { expr: 'tenant:qy_gpu_quota_use:ratio{tenant=~"$tenant", pool=~"$pool"}', legend: 'GPUs {{tenant}} {{pool}}' },
        ],
      },
      { title: 'Wait time, p90', description: 'From submission (or requeue) to placement, 90th percentile over 5 minutes.', type: 'timeseries', unit: 's', w: 24, queries: [{ expr: 'tenant:qy_wait_seconds:p90_5m{tenant=~"$tenant"}', legend: '{{tenant}}' }] },
    ],
  },
  {
    uid: 'qy-node',
    title: 'Qingyang / Node',
    description: 'One node: utilisation, GPUs, power and the tasks it runs.',
    file: 'node.json',
    variables: [
      { name: 'pool', label: 'Pool', query: 'label_values(qy_node_power_watts, pool)', multi: false },
      { name: 'node', label: 'Node', query: 'label_values(qy_node_power_watts{pool="$pool"}, node)', multi: false },
    ],
    panels: [
      { title: 'Takes new work', description: '1 when the node is ready; 0 when cordoned, suspect or down.', type: 'stat', unit: 'bool_yes_no', w: 6, queries: [{ expr: 'qy_node_ready{node="$node"}' }] },
      { title: 'Tasks', description: 'Tasks placed on the node.', type: 'stat', unit: 'short', w: 6, queries: [{ expr: 'qy_node_tasks{node="$node"}' }] },
      { title: 'Power', description: 'Power the node’s agent reports (RAPL, NVML, or its utilisation model).', type: 'stat', unit: 'watt', w: 6, queries: [{ expr: 'qy_node_power_watts{node="$node"}' }] },
      { title: 'Green share', description: 'Share of the node’s electricity from renewable sources.', type: 'gauge', unit: 'percentunit', min: 0, max: 1, w: 6, queries: [{ expr: 'qy_node_green_share_ratio{node="$node"}' }] },
      {
        title: 'Utilisation',
        description: 'CPU busy share and mean GPU utilisation, from heartbeats.',
        type: 'timeseries',
        unit: 'percentunit',
        min: 0,
        max: 1,
        w: 12,
        queries: [
          { expr: 'qy_node_cpu_utilisation_ratio{node="$node"}', legend: 'CPU' },
          { expr: 'qy_node_gpu_utilisation_ratio{node="$node"}', legend: 'GPU' },
        ],
      },
      { title: 'Memory in use', description: 'Memory in use on the node.', type: 'timeseries', unit: 'bytes', w: 12, queries: [{ expr: 'qy_node_memory_used_bytes{node="$node"}', legend: 'memory' }] },
      { title: 'GPUs allocated', description: 'GPUs of the node allocated to jobs.', type: 'timeseries', unit: 'short', w: 12, queries: [{ expr: 'qy_node_gpus_allocated{node="$node"}', legend: 'GPUs' }] },
      { title: 'Power over time', description: 'Power the node draws.', type: 'timeseries', unit: 'watt', w: 12, queries: [{ expr: 'qy_node_power_watts{node="$node"}', legend: 'power' }] },
    ],
  },
];
