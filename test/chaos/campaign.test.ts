import { expect, test } from 'vitest';
import { runCampaign } from '../../chaos/campaign';

/**
 * A short chaos campaign, as CI runs it: the whole stack (3 NATS servers, 2 replicas, 3 agents of real
 * processes, PostgreSQL), 25 s of work under seed 17's faults (an agent cut off, the leader killed, an agent
 * killed), then every acknowledged job must have ended once and been metered once. Waits are conditions
 * with generous bounds (the stack's convergence), so a busy machine makes it slower, not red.
 */
test('a short chaos campaign (seed 17, 25 s) loses nothing and runs nothing twice', async () => {
  const lines: string[] = [];
  const report = await runCampaign({ seed: 17, durationS: 25, log: (line) => lines.push(line), convergeTimeoutMs: 300_000 });
  const context = `\n${lines.join('\n')}`;
  expect(report.summary.faults, context).toBeGreaterThanOrEqual(2);
  expect(report.summary.acked, context).toBeGreaterThan(10);
  expect(report.summary, context).toMatchObject({ seed: 17, durationS: 25, lost: 0, duplicateStarts: 0, overlaps: 0, doubleMetered: 0, unmetered: 0, auditValid: true });
}, 900_000);
