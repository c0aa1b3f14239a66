import type { SchedulerClient } from '../src/client';
import type { JobSpecInput } from '../src/protocol';
import type { Ack } from './checker';
import { randInt, type Rng } from '../src/sim/rng';

/**
 * The task every chaos job runs: bash (its builtins only, but for `sleep`, so a tick costs one fork) appends
 * to the shared history file a start line with a nonce unique to this process start, a tick every half
 * second while it works, and an end line once its work is done (see chaos/checker.ts for the format). The
 * job and attempt ids come from the environment the agent gives every task (QY_JOB_ID, QY_ATTEMPT_ID,
 * QY_TASK_INDEX).
 */
export function taskScript(historyFile: string, ticks: number): string {
  const file = `'${historyFile.replace(/'/g, "'\\''")}'`;
  return [
    `n="$$-\${EPOCHREALTIME/./}-$RANDOM"`,
    `id="$QY_JOB_ID $QY_ATTEMPT_ID $QY_TASK_INDEX $n"`,
    `t=\${EPOCHREALTIME/./}; echo "S $id \${t:0:-3}" >> ${file}`,
    `i=0; while [ $i -lt ${ticks} ]; do sleep 0.5; t=\${EPOCHREALTIME/./}; echo "T $id \${t:0:-3}" >> ${file}; i=$((i+1)); done`,
    `t=\${EPOCHREALTIME/./}; echo "E $id \${t:0:-3}" >> ${file}`,
  ].join('\n');
}

/**
 * A chaos job: one task of one core running the history script for 1 to 3 seconds, or (a `longShare` of
 * them) 20 to 30 s, long enough to outlive a node's down threshold.
 */
export function chaosJob(historyFile: string, rng: Rng, longShare = 0): JobSpecInput {
  const ticks = longShare > 0 && rng() < longShare ? randInt(rng, 40, 60) : randInt(rng, 2, 6);
  return {
    pool: 'general',
    resources: { cpuMillis: 1000, memBytes: 64 * 1024 ** 2 },
    walltimeSeconds: 300,
    command: ['bash', '-c', taskScript(historyFile, ticks)],
  };
}

export interface Submitter {
  /** Every acknowledgement received (a replay of a key is one more). */
  readonly acks: Ack[];
  /** Submissions tried so far, and how many tries failed (no answer, 5xx, 503 while leadership moves). */
  readonly stats: { submitted: number; failedTries: number; replays: number };
  /** Submits under `key` until acknowledged (or `giveUpAt`), retrying the same key across failures. */
  submit(key: string, spec: JobSpecInput): Promise<string | undefined>;
  /** Waits for submissions still retrying. */
  drain(): Promise<void>;
}

/**
 * Submits with an Idempotency-Key and keeps retrying the same key while the stack is broken (a lost answer
 * may hide a job that was stored): every answer it gets is kept for the checker, which demands one job per key.
 */
export function submitter(client: SchedulerClient, giveUpAt: () => number): Submitter {
  const acks: Ack[] = [];
  const stats = { submitted: 0, failedTries: 0, replays: 0 };
  const pending = new Set<Promise<unknown>>();
  const submit = async (key: string, spec: JobSpecInput): Promise<string | undefined> => {
    stats.submitted++;
    for (let delayMs = 200; ; delayMs = Math.min(3_000, delayMs * 2)) {
      try {
        const res = await client.submit(spec, { idempotencyKey: key });
        acks.push({ idempotencyKey: key, jobId: res.id });
        if (res.replayed) stats.replays++;
        return res.id;
      } catch {
        stats.failedTries++;
      }
      if (Date.now() > giveUpAt()) return undefined;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  };
  return {
    acks,
    stats,
    submit(key, spec) {
      const p = submit(key, spec);
      pending.add(p);
      void p.finally(() => pending.delete(p));
      return p;
    },
    async drain() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
