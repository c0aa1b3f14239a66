import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeState, Pool } from '../protocol';

/** What the scheduler looks like at scrape time; gauges are computed from it, so they are never stale. */
export interface MetricsSource {
  ready(): boolean;
  /** Per pool: whether this replica leads it (places and accepts writes), and its term there (0 if not). */
  leadership(): { pool: Pool; leading: boolean; term: number }[];
  pools(): {
    pool: Pool;
    nodes: Record<NodeState, number>;
    allocatable: { cpuMillis: number; memBytes: number; gpus: number };
    allocated: { cpuMillis: number; memBytes: number; gpuMilli: number };
    running: number;
    powerWatts: number;
    powerBudgetWatts?: number;
  }[];
  pending(): { pool: Pool; priorityClass: string; count: number }[];
  nodes(): {
    id: string;
    pool: Pool;
    state: NodeState;
    cpuUtil: number;
    memUsedBytes: number;
    gpuUtil: number;
    gpusAllocated: number;
    tasks: number;
    powerWatts: number;
    greenShare: number;
  }[];
  tenants(): {
    tenant: string;
    pool: Pool;
    cpuMillis: number;
    gpuMilli: number;
    running: number;
    pending: number;
    dominantShare: number;
    quotaCpuMillis?: number;
    quotaGpus?: number;
  }[];
  /** Grid carbon intensity in force, gCO2/kWh. */
  carbonIntensity(): number;
}

/** Buckets from a microsecond to ten seconds: placement decisions take microseconds, and the histogram must show them. */
const PLACEMENT_BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1, 1, 10];
/** Buckets from a millisecond to a day, for job waits and submit-to-running. */
const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

/**
 * Every metric the scheduler serves on /metrics (Prometheus conventions: base units, `_total` counters;
 * labels bounded — the node label appears only on per-node gauges, tenants are the configured ones).
 * Events are recorded as they happen; gauges are computed from a MetricsSource at scrape time.
 */
export class SchedulerMetrics {
  readonly registry = new Registry();

  readonly jobsSubmitted = new Counter({ name: 'qy_jobs_submitted_total', help: 'Jobs accepted by the API.', labelNames: ['pool', 'tenant'], registers: [this.registry] });
  readonly jobsPlaced = new Counter({ name: 'qy_jobs_placed_total', help: 'Placements made (a requeued job is placed again).', labelNames: ['pool', 'tenant'], registers: [this.registry] });
  readonly jobsFinished = new Counter({ name: 'qy_jobs_finished_total', help: 'Jobs that ended, by outcome (succeeded, failed, cancelled).', labelNames: ['pool', 'tenant', 'outcome'], registers: [this.registry] });
  readonly jobsRequeued = new Counter({ name: 'qy_jobs_requeued_total', help: 'Attempts abandoned and queued again, by cause (node_down, lost, drained, preempted).', labelNames: ['pool', 'cause'], registers: [this.registry] });
  readonly placementFailures = new Counter({ name: 'qy_placement_failures_total', help: 'Placement attempts that did not place the job, by the main reason.', labelNames: ['pool', 'reason'], registers: [this.registry] });
  readonly placementDuration = new Histogram({ name: 'qy_placement_attempt_duration_seconds', help: 'Time of one placement decision (filter, score, select).', labelNames: ['pool', 'result'], buckets: PLACEMENT_BUCKETS, registers: [this.registry] });
  readonly submitToRunning = new Histogram({ name: 'qy_job_submit_to_running_seconds', help: 'From submission to the first running report of the first attempt.', labelNames: ['pool'], buckets: WAIT_BUCKETS, registers: [this.registry] });
  readonly waitTime = new Histogram({ name: 'qy_job_wait_seconds', help: 'From submission (or requeue) to placement.', labelNames: ['pool', 'tenant'], buckets: WAIT_BUCKETS, registers: [this.registry] });
  readonly cycles = new Counter({ name: 'qy_scheduling_cycles_total', help: 'Scheduling cycles run (each tries the waiting jobs of the pools that changed).', registers: [this.registry] });
  readonly cycleDuration = new Histogram({ name: 'qy_scheduling_cycle_duration_seconds', help: 'Time of one scheduling cycle.', buckets: PLACEMENT_BUCKETS, registers: [this.registry] });
  readonly preemptions = new Counter({ name: 'qy_preemptions_total', help: 'Jobs preempted to make room for higher-priority ones.', labelNames: ['pool'], registers: [this.registry] });
  readonly heartbeatsMissed = new Counter({ name: 'qy_heartbeats_missed_total', help: 'Heartbeats expected from nodes and not received.', labelNames: ['pool'], registers: [this.registry] });
  readonly nodesForgotten = new Counter({ name: 'qy_nodes_forgotten_total', help: 'Down nodes forgotten: by=gc after QY_NODE_GC_AFTER_MS, by=operator through DELETE /v1/nodes/:id.', labelNames: ['pool', 'by'], registers: [this.registry] });
  readonly energy = new Counter({ name: 'qy_energy_joules_total', help: 'Electrical energy drawn by the nodes, from their heartbeats.', labelNames: ['pool'], registers: [this.registry] });
  readonly greenEnergy = new Counter({ name: 'qy_green_energy_joules_total', help: 'Part of that energy from renewable sources.', labelNames: ['pool'], registers: [this.registry] });
  readonly logAppends = new Counter({ name: 'qy_job_log_appends_total', help: 'Scheduler events appended to the job log, by result.', labelNames: ['result'], registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'qy_leader_elections_total', help: 'Times this replica became the leader of a pool.', labelNames: ['pool'], registers: [this.registry] });
  readonly rebuilds = new Counter({ name: 'qy_state_rebuilds_total', help: 'Times the scheduler rebuilt its state from the job log.', registers: [this.registry] });
  readonly telemetryDropped = new Counter({ name: 'qy_telemetry_dropped_points_total', help: 'Telemetry points dropped because InfluxDB could not take them.', registers: [this.registry] });
  readonly telemetryWritten = new Counter({ name: 'qy_telemetry_written_points_total', help: 'Telemetry points written to InfluxDB.', registers: [this.registry] });

  /** What the source gave during the scrape under way: every gauge of one scrape reads the same snapshot. */
  private snapshot: Partial<{ [K in keyof MetricsSource]: ReturnType<MetricsSource[K]> }> = {};

  constructor(live: MetricsSource) {
    // pools(), nodes() and tenants() walk the whole cluster; a scrape reads each of them for many gauges.
    const once =
      <K extends keyof MetricsSource>(key: K) =>
      (): ReturnType<MetricsSource[K]> =>
        (this.snapshot[key] ??= live[key]() as never) as ReturnType<MetricsSource[K]>;
    const source: MetricsSource = {
      ready: once('ready'),
      leadership: once('leadership'),
      pools: once('pools'),
      pending: once('pending'),
      nodes: once('nodes'),
      tenants: once('tenants'),
      carbonIntensity: once('carbonIntensity'),
    };
    // Event-loop lag sampled every 100 ms, not every 10 ms (the default): an idle process woke up 100 times a
    // second for this alone.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    // prom-client names these gauges with a counter's "_total" suffix, which promtool rightly flags.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    const r = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: r,
        collect() {
          this.reset();
          collect(this);
        },
      });

    gauge('qy_scheduler_ready', 'Whether the scheduler has rebuilt its state and serves (1) or not (0).', [], (g) => g.set(source.ready() ? 1 : 0));
    gauge('qy_scheduler_leader', 'Whether this replica leads the pool: places and accepts writes (1), or stands by (0).', ['pool'], (g) => {
      for (const l of source.leadership()) g.set({ pool: l.pool }, l.leading ? 1 : 0);
    });
    gauge('qy_scheduler_term', 'The leadership term this replica leads the pool in (0 when it does not).', ['pool'], (g) => {
      for (const l of source.leadership()) g.set({ pool: l.pool }, l.term);
    });
    gauge('qy_nodes', 'Nodes by pool and state.', ['pool', 'state'], (g) => {
      for (const p of source.pools()) for (const [state, n] of Object.entries(p.nodes)) g.set({ pool: p.pool, state }, n);
    });
    gauge('qy_jobs_pending', 'Jobs waiting in the queue.', ['pool', 'priority_class'], (g) => {
      for (const q of source.pending()) g.set({ pool: q.pool, priority_class: q.priorityClass }, q.count);
    });
    gauge('qy_jobs_running', 'Jobs holding a placement (placed or running).', ['pool'], (g) => {
      for (const p of source.pools()) g.set({ pool: p.pool }, p.running);
    });
    const perPool = (name: string, help: string, value: (p: ReturnType<MetricsSource['pools']>[number]) => number | undefined) =>
      gauge(name, help, ['pool'], (g) => {
        for (const p of source.pools()) {
          const v = value(p);
          if (v !== undefined) g.set({ pool: p.pool }, v);
        }
      });
    perPool('qy_pool_allocatable_cpu_cores', 'CPU cores the pool can hand out.', (p) => p.allocatable.cpuMillis / 1000);
    perPool('qy_pool_allocated_cpu_cores', 'CPU cores allocated to jobs.', (p) => p.allocated.cpuMillis / 1000);
    perPool('qy_pool_allocatable_memory_bytes', 'Memory the pool can hand out.', (p) => p.allocatable.memBytes);
    perPool('qy_pool_allocated_memory_bytes', 'Memory allocated to jobs.', (p) => p.allocated.memBytes);
    perPool('qy_pool_allocatable_gpus', 'GPUs the pool can hand out.', (p) => p.allocatable.gpus);
    perPool('qy_pool_allocated_gpus', 'GPUs allocated to jobs (shares count as fractions).', (p) => p.allocated.gpuMilli / 1000);
    perPool('qy_pool_power_watts', 'Power drawn by the pool’s nodes, from their last heartbeats.', (p) => p.powerWatts);
    perPool('qy_pool_power_budget_watts', 'Power cap of the pool, where one is configured.', (p) => p.powerBudgetWatts);
    gauge('qy_grid_carbon_intensity_grams_per_kwh', 'Carbon intensity of grid electricity in force (gCO2/kWh).', [], (g) => g.set(source.carbonIntensity()));

    const perNode = (name: string, help: string, value: (n: ReturnType<MetricsSource['nodes']>[number]) => number) =>
      gauge(name, help, ['node', 'pool'], (g) => {
        for (const n of source.nodes()) g.set({ node: n.id, pool: n.pool }, value(n));
      });
    perNode('qy_node_power_watts', 'Power drawn by the node, from its last heartbeat.', (n) => n.powerWatts);
    perNode('qy_node_green_share_ratio', 'Share of the node’s electricity from renewable sources (0..1).', (n) => n.greenShare);
    perNode('qy_node_cpu_utilisation_ratio', 'CPU busy share of the node (0..1).', (n) => n.cpuUtil);
    perNode('qy_node_memory_used_bytes', 'Memory in use on the node.', (n) => n.memUsedBytes);
    perNode('qy_node_gpu_utilisation_ratio', 'Mean GPU utilisation of the node (0..1).', (n) => n.gpuUtil);
    perNode('qy_node_gpus_allocated', 'GPUs of the node allocated to jobs.', (n) => n.gpusAllocated);
    perNode('qy_node_tasks', 'Tasks placed on the node.', (n) => n.tasks);
    perNode('qy_node_ready', 'Whether the node takes new work (1) or is cordoned, suspect or down (0).', (n) => (n.state === 'ready' ? 1 : 0));

    const perTenant = (name: string, help: string, value: (t: ReturnType<MetricsSource['tenants']>[number]) => number | undefined) =>
      gauge(name, help, ['tenant', 'pool'], (g) => {
        for (const t of source.tenants()) {
          const v = value(t);
          if (v !== undefined) g.set({ tenant: t.tenant, pool: t.pool }, v);
        }
      });
    perTenant('qy_tenant_allocated_cpu_cores', 'CPU cores allocated to the tenant’s jobs.', (t) => t.cpuMillis / 1000);
    perTenant('qy_tenant_allocated_gpus', 'GPUs allocated to the tenant’s jobs.', (t) => t.gpuMilli / 1000);
    perTenant('qy_tenant_jobs_running', 'Jobs of the tenant holding a placement.', (t) => t.running);
    perTenant('qy_tenant_jobs_pending', 'Jobs of the tenant waiting in the queue.', (t) => t.pending);
    perTenant('qy_tenant_dominant_share_ratio', 'The tenant’s largest share of any resource of the pool (fair share, 0..1).', (t) => t.dominantShare);
    perTenant('qy_tenant_quota_cpu_cores', 'CPU quota of the tenant in the pool, where one is set.', (t) => (t.quotaCpuMillis === undefined ? undefined : t.quotaCpuMillis / 1000));
    perTenant('qy_tenant_quota_gpus', 'GPU quota of the tenant in the pool, where one is set.', (t) => t.quotaGpus);
  }

  /** The text exposition served on /metrics, from one snapshot of the source. */
  async text(): Promise<string> {
    this.snapshot = {};
    try {
      return await this.registry.metrics();
    } finally {
      this.snapshot = {};
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
