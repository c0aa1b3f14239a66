import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadSchedulerConfig } from '../../scheduler/config';
import { runScheduler, type RunningScheduler } from '../../scheduler/run';
import type { Principal } from '../../scheduler/tenants';
import { jobFromSpec, type Placement } from '../../src/core';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import { jobSpecSchema, nodeSpecSchema, type JobSpec, type NodeSpec } from '../../src/protocol';
import { environmentOf } from '../../src/sim/cluster-file';
import { simulate } from '../../src/sim/engine';
import { SIM_POLICIES } from '../../src/sim/policies';
import { seededRng } from '../../src/sim/rng';
import type { TimedJob } from '../../src/sim/synthetic';
import { ManualClock } from '../helpers/manual-clock';
import { ScriptedAgent } from '../helpers/scripted-agent';
import { silentLog, testTenantsFile } from '../helpers/stack';
import { waitUntil } from '../helpers/api';

/*
 * One recorded job stream — arrivals, completions and node outages — goes through the service's scheduling
 * cycle (in this process, on a virtual clock, against a real nats-server) and through the simulator with the
 * service's policy. Both must make the same placements at the same times: the simulator answers questions
 * about the scheduler that runs, not about a model of it.
 */

const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const GiB = 1024 ** 3;
const DOWN_AFTER_MS = 10_000;
const GREEN_SHARE = 0.5;
const CLASSES = { urgent: 1000, normal: 500, batch: 100, 'best-effort': 0 } as const;

function nodes(): NodeSpec[] {
  const out: NodeSpec[] = [];
  const add = (id: string, pool: NodeSpec['pool'], extra: Record<string, unknown>) => out.push(nodeSpecSchema.parse({ id, pool, zone: 'z1', ratedPowerWatts: 500, ...extra }));
  for (let i = 0; i < 6; i++) add(`g${i}`, 'general', { rack: `gr${i % 2}`, capacity: { cpuMillis: 8000, memBytes: 32 * GiB } });
  for (let i = 0; i < 3; i++) add(`i${i}`, 'intelligent', { rack: 'ir0', gpuModel: 'A800', capacity: { cpuMillis: 32_000, memBytes: 256 * GiB, gpus: 4, gpuMemBytes: 80 * GiB } });
  for (let i = 0; i < 8; i++) add(`s${i}`, 'super', { rack: `sr${i % 2}`, capacity: { cpuMillis: 32_000, memBytes: 128 * GiB } });
  return out;
}

interface Arrival {
  atMs: number;
  tenant: string;
  spec: JobSpec;
  runMs: number;
}

/** A mixed stream at a load that queues: single tasks and small gangs, GPUs and GPU shares, super-pool gangs under EASY, a few urgent jobs that preempt. */
function stream(count: number, seed: number): Arrival[] {
  const rng = seededRng(seed);
  const out: Arrival[] = [];
  let t = T0 + 1_000;
  for (let i = 0; i < count; i++) {
    // Odd milliseconds everywhere: no two events of the stream fall on the same instant.
    t += 5_000 + Math.floor(rng() * 40_000) + 7;
    const runMs = 60_000 + Math.floor(rng() * 1_500_000) + 13;
    const r = rng();
    const priorityClass = rng() < 0.06 ? 'urgent' : rng() < 0.5 ? 'normal' : 'batch';
    let input: Record<string, unknown>;
    if (r < 0.45) input = { pool: 'general', tasks: rng() < 0.2 ? 2 : 1, resources: { cpuMillis: 1000 * (1 + Math.floor(rng() * 6)), memBytes: 2 * GiB } };
    else if (r < 0.75) input = { pool: 'intelligent', resources: rng() < 0.3 ? { cpuMillis: 2000, memBytes: 8 * GiB, gpuMilli: 250 + Math.floor(rng() * 3) * 250 } : { cpuMillis: 4000, memBytes: 16 * GiB, gpus: 1 + Math.floor(rng() * 3) } };
    else {
      // Walltimes cover the run and more (users overestimate), so EASY has something to work with.
      const walltimeSeconds = Math.ceil((runMs / 1000) * (1 + rng()));
      input = { pool: 'super', tasks: 1 + Math.floor(rng() * 5), walltimeSeconds, resources: { cpuMillis: 16_000, memBytes: 32 * GiB } };
    }
    out.push({ atMs: t, tenant: rng() < 0.5 ? 'city-a' : 'city-b', spec: jobSpecSchema.parse({ ...input, priorityClass, command: ['true'] }), runMs });
  }
  return out;
}

/** What each job's placements were, in submission order: when, and on which nodes and devices. */
type PlacementLog = string[][];

const describePlacement = (atMs: number, p: Placement) => `${atMs - T0}:${p.tasks.map((t) => `${t.taskIndex}@${t.nodeId}[${t.gpuIndices.join(',')}x${t.gpuMilliEach}]${t.cpuMillis}`).join(' ')}`;

let nats: LocalNatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

test('the service and the simulator make the same placements at the same times (arrivals, completions, preemption, EASY, node outages)', async () => {
  const arrivals = stream(160, 42);
  const spanMs = arrivals[arrivals.length - 1].atMs - T0;
  const outages = [
    { nodeId: 'g1', atMs: T0 + Math.round(spanMs * 0.3) + 3, repairAtMs: T0 + Math.round(spanMs * 0.45) + 5 },
    { nodeId: 's2', atMs: T0 + Math.round(spanMs * 0.55) + 11, repairAtMs: T0 + Math.round(spanMs * 0.7) + 17 },
  ];

  // ---- The simulator, with the service's policy and defaults.
  const simLog: PlacementLog = arrivals.map(() => []);
  const timed: TimedJob[] = arrivals.map((a, i) => ({ runMs: a.runMs, job: jobFromSpec(a.spec, { id: `p${String(i).padStart(4, '0')}`, tenant: a.tenant, priority: CLASSES[a.spec.priorityClass as keyof typeof CLASSES], submittedAtMs: a.atMs }) }));
  const env = { ...environmentOf(), greenShareAt: () => GREEN_SHARE };
  const sim = simulate(timed, nodes(), SIM_POLICIES['priority-fair'].make(), env, { outages, onPlaced: (jobId, placement, atMs) => simLog[Number(jobId.slice(1))].push(describePlacement(atMs, placement)) });
  expect(sim.jobs.completed).toBe(arrivals.length);
  expect(sim.jobs.preempted).toBeGreaterThan(0);
  expect(sim.jobs.interrupted).toBeGreaterThan(0);

  // ---- The service, on a virtual clock: the same stream, step by step.
  const clock = new ManualClock(T0);
  const tenants = testTenantsFile();
  const config = loadSchedulerConfig(
    {},
    { natsUrl: nats.url, httpPort: 0, tenantsFile: tenants.file, heartbeatIntervalMs: 1000, suspectAfterMs: DOWN_AFTER_MS, downAfterMs: DOWN_AFTER_MS, cancelGraceMs: 0, preemptionGraceMs: 0, priorityClasses: JSON.stringify(CLASSES) },
  );
  const running: RunningScheduler = await runScheduler(config, silentLog, undefined, clock);
  const s = running.scheduler;
  const idOf: string[] = [];
  const runMsOf = new Map<string, number>();
  const agent = new ScriptedAgent('parity-agent', nodes(), (jobId) => runMsOf.get(jobId)!, GREEN_SHARE);
  try {
    await agent.start(nats.url);
    await waitUntil(() => s.registry.entries.size === nodes().length || undefined, 10_000, () => 'nodes did not register');

    /**
     * Everything the scheduler was told has been acted on, and everything it decided has reached the agent;
     * then the agent answers stop orders one at a time (preempted jobs stop one by one, each followed by a
     * cycle: the simulator's model of agents whose reports come in one after another).
     */
    const quiet = async () => {
      for (;;) {
        await waitUntil(
          () => {
            if (!s.cycle.isIdle || s.store.inFlight > 0) return undefined;
            for (const job of s.store.table.jobs.values()) {
              const a = job.current;
              if (!a) continue;
              if (!agent.hasAttempt(a.attemptId, a.tasks.length)) return undefined;
              // A stop on its way: every live task's cancel order has reached the agent.
              if (a.stop && a.tasks.some((t) => (t.state === 'assigned' || t.state === 'running') && !agent.hasCancel(a.attemptId, t.placement.taskIndex))) return undefined;
            }
            return true;
          },
          20_000,
          () => 'the scheduler did not settle',
        );
        if (!(await agent.reportCancel())) return;
      }
    };
    /** Sets the virtual time, heartbeats the live nodes at it, then lets the timers (the liveness sweep) fire. */
    const moveTo = async (atMs: number) => {
      clock.set(atMs);
      const sent = agent.heartbeat(atMs);
      await agent.flush();
      await waitUntil(() => sent.every((id) => s.registry.entries.get(id)!.lastSeenMs === atMs) || undefined, 10_000, () => 'heartbeats not seen');
      clock.fire();
      await quiet();
    };

    // Points in time the driver stops at besides arrivals and completions: an outage's last heartbeat, the outage, the repair.
    const marks: { atMs: number; run(): void }[] = [];
    for (const o of outages) {
      // The last heartbeat comes exactly when the scheduler must find the node down at the outage's time.
      marks.push({ atMs: o.atMs - DOWN_AFTER_MS, run: () => undefined });
      marks.push({ atMs: o.atMs - DOWN_AFTER_MS + 1, run: () => agent.silence(o.nodeId) });
      marks.push({ atMs: o.atMs, run: () => agent.fail(o.nodeId) });
      marks.push({ atMs: o.repairAtMs, run: () => agent.revive(o.nodeId) });
    }
    marks.sort((a, b) => a.atMs - b.atMs);
    const principalOf = (tenant: string): Principal => ({ kind: 'tenant', name: tenant, tenant: s.tenants.tenant(tenant)! });

    let next = 0;
    let nowMs = T0;
    for (;;) {
      const arrivalMs = next < arrivals.length ? arrivals[next].atMs : Number.POSITIVE_INFINITY;
      const markMs = marks.length > 0 ? marks[0].atMs : Number.POSITIVE_INFINITY;
      const endMs = agent.nextEndAfter(nowMs);
      const t = Math.min(arrivalMs, markMs, endMs);
      if (!Number.isFinite(t)) break;
      nowMs = t;
      while (marks.length > 0 && marks[0].atMs === t) marks.shift()!.run();
      await moveTo(t);
      if (endMs === t) {
        await agent.finishAt(t);
        await quiet();
      }
      while (next < arrivals.length && arrivals[next].atMs === t) {
        const a = arrivals[next++];
        const { id } = await running.ops.submit(a.spec, principalOf(a.tenant), undefined);
        idOf.push(id);
        runMsOf.set(id, a.runMs);
        await quiet();
      }
    }

    const serviceLog: PlacementLog = idOf.map((id) => s.store.table.get(id)!.attempts.map((a) => describePlacement(a.placedAtMs, a.placement)));
    const unfinished = idOf.filter((id) => s.store.table.get(id)!.state !== 'succeeded').map((id) => ({ id, i: idOf.indexOf(id), state: s.store.table.get(id)!.state, attempts: s.store.table.get(id)!.attempts.map((a) => a.attemptId), held: agent.heldOf(s.store.table.get(id)!.current?.attemptId ?? '') }));
    expect(unfinished).toEqual([]);
    if (process.env.PARITY_DUMP) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync('/tmp/parity-sim.json', JSON.stringify(simLog, null, 1));
      writeFileSync('/tmp/parity-svc.json', JSON.stringify(serviceLog, null, 1));
      writeFileSync('/tmp/parity-arrivals.json', JSON.stringify(arrivals.map((a) => ({ at: a.atMs - T0, pool: a.spec.pool, cls: a.spec.priorityClass, tasks: a.spec.tasks, res: a.spec.resources, runMs: a.runMs })), null, 1));
    }
    // Compared job by job so that a difference names the first job it shows in.
    for (let i = 0; i < arrivals.length; i++) expect({ job: i, placements: serviceLog[i] }).toEqual({ job: i, placements: simLog[i] });
  } finally {
    await agent.stop();
    await running.close();
  }
}, 300_000);
