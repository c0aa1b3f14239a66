import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SimResult } from './recorder';
import type { SyntheticOptions } from './sources';

/** One replay of one policy, described so that another process can make it from files and names alone. */
export interface ReplayRequest {
  trace: string;
  synthetic: SyntheticOptions;
  limit?: number;
  cluster?: string;
  carbon?: string;
  carbonStart?: string;
  /** A name of SIM_POLICIES; made processor-level when the trace is. */
  policy: string;
  /** EASY's look-ahead: a number, null for unbounded, absent for the policy's own. */
  backfillDepth?: number | null;
  options: { seed?: number; samples?: number; backfillIntervalMs?: number };
}

export interface ReplayOutcome {
  result: SimResult;
  /** CPU seconds of the replay itself (not of loading the trace). */
  cpuS: number;
}

export type ReplayMessage = { kind: 'progress'; arrived: number; total: number } | ({ kind: 'done' } & ReplayOutcome);

/**
 * Replays one policy in a process of its own. Replays of several policies are independent, and so is their
 * cost: in one process, a replay started on the heap the previous one left (hundreds of MB of dead task
 * placements) ran half as fast again as on a fresh one (the deep 1-core trace: EASY 47.6 s after FIFO,
 * 31.5 s alone). The child runs with this process's flags (tsx's loader included), and a young generation
 * of 64 MB semi-spaces unless they set one: a replay allocates a placement object per task and keeps most
 * of them for a while, and with V8's default the collector took a fifth of the time (the heavy 1-core trace
 * of bench:sim: 61–65 s against 73 s, one after the other).
 */
const YOUNG_GENERATION = '--max-semi-space-size=64';
/** The flags of a child process that simulates: this process's (tsx's loader included), with YOUNG_GENERATION unless they set one (see replayIsolated). */
export const childFlags = (): string[] => {
  const set = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((f) => f.startsWith('--max-semi-space-size'));
  return set ? process.execArgv : [...process.execArgv, YOUNG_GENERATION];
};
export function replayIsolated(request: ReplayRequest, onProgress?: (arrived: number, total: number) => void): Promise<ReplayOutcome> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./replay-child.ts', import.meta.url)), [], { execArgv: childFlags(), serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let outcome: ReplayOutcome | undefined;
    child.on('message', (m: ReplayMessage) => {
      if (m.kind === 'progress') onProgress?.(m.arrived, m.total);
      else outcome = { result: m.result, cpuS: m.cpuS };
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (outcome) resolve(outcome);
      else reject(new Error(`the replay of ${request.policy} ended without a result (exit ${code ?? signal})`));
    });
    child.send(request);
  });
}
