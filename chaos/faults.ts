import { pickWeighted, randInt, type Rng } from '../src/sim/rng';
import { CHAOS_TIMINGS, MAX_AGENT_FAULT_MS, type ChaosStack, type ProxiedProcess } from './stack';

export const FAULT_KINDS = [
  'kill-leader',
  'kill-standby',
  'kill-agent',
  'kill-nats',
  'pause-leader',
  'pause-standby',
  'pause-agent',
  'partition-agent',
  'partition-replica',
  'db-outage',
  'burst',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One fault of the schedule: when (seconds after the workload started, at the earliest), what, how long. */
export interface PlannedFault {
  index: number;
  atS: number;
  kind: FaultKind;
  /** Agent, NATS server or replica index where the kind needs one (leader/standby are found when it happens). */
  target: number;
  /** How long the fault lasts before it is healed (a killed process restarted), or the burst's size. */
  holdMs: number;
}

const WEIGHTS: readonly (readonly [FaultKind, number])[] = [
  ['kill-leader', 2],
  ['kill-standby', 1],
  ['kill-agent', 2],
  ['kill-nats', 2],
  ['pause-leader', 1],
  ['pause-standby', 1],
  ['pause-agent', 1],
  ['partition-agent', 2],
  ['partition-replica', 2],
  ['db-outage', 1],
  ['burst', 2],
];

/** How long each kind lasts, in ms (a burst: how many submissions). */
const HOLD: Record<FaultKind, [number, number]> = {
  'kill-leader': [1_000, 5_000],
  'kill-standby': [1_000, 5_000],
  // A killed agent is restarted after this, and a restart takes a few seconds more: the node must not go down.
  'kill-agent': [500, 2_000],
  'kill-nats': [2_000, 8_000],
  // Longer than the 3 s lease sometimes: the paused leader wakes up deposed.
  'pause-leader': [1_000, 6_000],
  'pause-standby': [1_000, 6_000],
  'pause-agent': [1_000, MAX_AGENT_FAULT_MS],
  'partition-agent': [1_000, MAX_AGENT_FAULT_MS],
  'partition-replica': [2_000, 8_000],
  'db-outage': [2_000, 10_000],
  burst: [20, 40],
};

/**
 * The seeded fault schedule: faults one after another, a pause of 2-6 s of calm between them, from 5 s in
 * until `durationS` (a fault that starts late, because the previous one took longer to heal, is still run
 * if it starts before the end).
 */
export function planFaults(rng: Rng, durationS: number, kinds: readonly FaultKind[] = FAULT_KINDS, agents = 3, options: { longAgentPartitions?: boolean; dbOutageMs?: number } = {}): PlannedFault[] {
  const weights = WEIGHTS.filter(([k]) => kinds.includes(k));
  const plan: PlannedFault[] = [];
  for (let atMs = 5_000; atMs < durationS * 1000 - 5_000; ) {
    const kind = pickWeighted(rng, weights);
    // Long partitions outlast the down threshold: the node is declared down and its work placed elsewhere
    // while the cut-off agent may still run it, unless it fences itself.
    const [lo, hi] = kind === 'partition-agent' && options.longAgentPartitions ? [CHAOS_TIMINGS.downAfterMs + 3_000, CHAOS_TIMINGS.downAfterMs + 8_000] : HOLD[kind];
    const drawn = randInt(rng, lo, hi);
    const holdMs = kind === 'db-outage' && options.dbOutageMs !== undefined ? options.dbOutageMs : drawn;
    const target = kind.endsWith('agent') ? randInt(rng, 0, agents - 1) : kind === 'kill-nats' ? randInt(rng, 0, 2) : randInt(rng, 0, 1);
    plan.push({ index: plan.length + 1, atS: Math.round(atMs / 100) / 10, kind, target, holdMs });
    atMs += (kind === 'burst' ? 1_000 : holdMs) + randInt(rng, 2_000, 6_000);
  }
  return plan;
}

export function describeFault(f: PlannedFault): string {
  const what = f.kind === 'burst' ? `${f.holdMs} submissions` : `${(f.holdMs / 1000).toFixed(1)} s`;
  const target = f.kind.endsWith('agent') ? ` agent-${f.target + 1}` : f.kind === 'kill-nats' ? ` nats-${f.target + 1}` : f.kind === 'partition-replica' ? ` replica-${f.target === 0 ? 'a' : 'b'}` : '';
  return `#${f.index} at ${f.atS.toFixed(1)} s: ${f.kind}${target} (${what})`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Injects a fault and heals it after its hold; `burst` is given the submissions to fire. */
export async function runFault(stack: ChaosStack, f: PlannedFault, burst: (count: number) => Promise<void>, log: (line: string) => void): Promise<void> {
  const replicaFor = async (leading: boolean) => {
    const leader = await stack.leader();
    const index = leader === undefined ? f.target : leading ? leader : 1 - leader;
    return stack.replicas[index];
  };
  switch (f.kind) {
    case 'kill-leader':
    case 'kill-standby': {
      const r = await replicaFor(f.kind === 'kill-leader');
      log(`  kill -9 ${r.name}`);
      await r.svc.kill9();
      await sleep(f.holdMs);
      log(`  restart ${r.name}`);
      await r.start();
      return;
    }
    case 'kill-agent': {
      const a = stack.agents[f.target];
      log(`  kill -9 ${a.name}`);
      await a.svc.kill9();
      await sleep(f.holdMs);
      log(`  restart ${a.name}`);
      await a.start();
      return;
    }
    case 'kill-nats': {
      const s = stack.nats.servers[f.target];
      log(`  kill -9 nats-${f.target + 1}`);
      await s.kill9();
      await sleep(f.holdMs);
      log(`  restart nats-${f.target + 1}`);
      await s.restart();
      return;
    }
    case 'pause-leader':
    case 'pause-standby':
    case 'pause-agent': {
      const p: ProxiedProcess = f.kind === 'pause-agent' ? stack.agents[f.target] : await replicaFor(f.kind === 'pause-leader');
      log(`  SIGSTOP ${p.name}`);
      signal(p, 'SIGSTOP');
      await sleep(f.holdMs);
      log(`  SIGCONT ${p.name}`);
      signal(p, 'SIGCONT');
      return;
    }
    case 'partition-agent':
    case 'partition-replica': {
      const p = f.kind === 'partition-agent' ? stack.agents[f.target] : stack.replicas[f.target];
      log(`  cut ${p.name} off NATS`);
      for (const proxy of p.proxies) proxy.cut();
      await sleep(f.holdMs);
      log(`  heal ${p.name}`);
      for (const proxy of p.proxies) proxy.heal();
      return;
    }
    case 'db-outage':
      log('  stop postgres');
      await stack.postgres.stop();
      await sleep(f.holdMs);
      log('  start postgres');
      await stack.postgres.restart();
      return;
    case 'burst':
      await burst(f.holdMs);
      return;
  }
}

function signal(p: ProxiedProcess, sig: NodeJS.Signals): void {
  try {
    if (p.svc.child.exitCode === null && p.svc.child.signalCode === null) p.svc.child.kill(sig);
  } catch {
    // exited meanwhile
  }
}
