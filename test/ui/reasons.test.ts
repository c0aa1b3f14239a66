import { describe, expect, test } from 'vitest';
import { formatFailure, type PlacementFailure, type ReasonCode } from '../../src/core';
import { explainPending } from '../../ui/js/reasons.js';

const ALL_REASONS: ReasonCode[] = [
  'node-cordoned', 'node-suspect', 'node-down', 'pool-mismatch', 'gpu-model-mismatch', 'no-gpus', 'gpu-memory-too-small', 'node-selector-mismatch', 'affinity-mismatch',
  'anti-affinity-match', 'untolerated-taint', 'security-level-too-low', 'node-too-small', 'node-not-idle', 'insufficient-gpus', 'insufficient-gpu-share', 'insufficient-cpu',
  'insufficient-memory', 'insufficient-extended', 'restricted-isolation', 'gang-too-large',
];

function failure(extra: Partial<PlacementFailure> = {}): PlacementFailure {
  const reasons = Object.fromEntries(ALL_REASONS.map((code, i) => [code, i + 1]));
  return { ok: false, never: false, totalNodes: 231, reasons, tasks: 1, gpuModels: ['H20'], nodesEvaluated: 231, ...extra };
}

describe('why a job waits, in plain words', () => {
  test('every node reason the core can give is recognised (the console and src/core/reasons.ts agree)', () => {
    const [said] = explainPending(formatFailure(failure()));
    expect(said.text).toBe('No node can take it now (0 of 231 nodes fit).');
    expect(said.items).toHaveLength(ALL_REASONS.length);
    // A recognised reason reads "<n> nodes: <reason>"; an unrecognised one would come back as the raw "<n> <text>".
    expect(said.items!.filter((item) => !/^\d+ nodes?: /.test(item))).toEqual([]);
    expect(said.items).toContain('5 nodes: another GPU model (wanted: H20)');
    expect(said.items).toContain('1 node: cordoned');
  });

  test('gangs and jobs that can never run', () => {
    expect(explainPending(formatFailure(failure({ tasks: 4, tasksFitting: 2, reasons: { 'insufficient-cpu': 3 } })))).toEqual([
      { text: 'No node can take it now (0 of 231 nodes fit). 2 of the 4 tasks of the gang would fit.', items: ['3 nodes: too few free cores'] },
    ]);
    expect(explainPending(formatFailure(failure({ never: true, reasons: { 'node-too-small': 231 } })))[0].text).toMatch(/^It can never run in this pool/);
  });

  test('holds joined with a placement failure are explained one by one', () => {
    const reason = `tenant city-a is at its general quota of 4 cores (4 in use, this job needs 2); ${formatFailure(failure({ reasons: { 'insufficient-memory': 2 } }))}`;
    const parts = explainPending(reason);
    expect(parts.map((p) => p.text)).toEqual(['Tenant city-a has reached its quota in General: 4 cores (4 in use, this job needs 2).', 'No node can take it now (0 of 231 nodes fit).']);
  });

  test.each([
    ['deferred for greener power until 2026-11-26T05:00:00.000Z: forecast 212 gCO2/kWh over its run, against 498 if it started now (latest start 2026-11-26T13:00:00.000Z)', /^Waiting for greener power until .*: about 212 gCO₂\/kWh expected over its run, against 498 now/],
    ['held by the power budget of pool general: 0.2 of 0.4 kW estimated in use, this job adds 0.3 kW', /^Held by the power budget of General: 0.2 of 0.4 kW/],
    ['reserved to start at 2026-11-26T05:00:00.000Z when running jobs reach their walltime (EASY backfill)', /^First in line: it has a reservation/],
    ['held back by EASY backfill: it would delay j0abc, reserved to start at 2026-11-26T05:00:00.000Z', /^Held back so that it does not delay job j0abc/],
    ['waiting for the next scheduling cycle', /^It will be looked at in the next scheduling cycle/],
    ['something new the console does not know', /^something new the console does not know$/],
  ])('%s', (reason, want) => {
    const parts = explainPending(reason);
    expect(parts).toHaveLength(1);
    expect(parts[0].text).toMatch(want);
  });
});
