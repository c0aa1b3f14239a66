import { expect, test } from 'vitest';
import { JobStore } from '../../scheduler/job-store';
import type { LeadershipView } from '../../scheduler/leadership';
import type { JobEvent } from '../../src/protocol';
import type { JobLog } from '../../src/store/job-log';
import type { SchedulerMetrics } from '../../src/telemetry/metrics';
import { silentLog } from '../helpers/stack';

/** A replica that leads the general pool in term 3 and no other pool. */
const leadership: LeadershipView = {
  leads: (pool) => pool === 'general',
  termOf: (pool) => (pool === 'general' ? 3 : undefined),
  ledPools: ['general'],
  leaderOf: () => undefined,
  confirm: () => undefined,
};
const store = new JobStore(() => ({}) as JobLog, leadership, silentLog, {} as SchedulerMetrics, { runEffects: () => undefined, appendFailed: () => undefined, relieved: () => undefined }, 1_000);

test('a job event read back is taken as its own (not validated again) only when written in this replica\'s current term of its pool', () => {
  const submitted = (pool: string, term: number) => ({ type: 'submitted', jobId: 'j-1', term, spec: { pool } }) as unknown as Partial<JobEvent>;
  expect(store.isOwnEvent(submitted('general', 3))).toBe(true);
  // Another term: a predecessor's or a successor's write, validated as usual.
  expect(store.isOwnEvent(submitted('general', 2))).toBe(false);
  expect(store.isOwnEvent(submitted('general', 4))).toBe(false);
  // A pool this replica does not lead.
  expect(store.isOwnEvent(submitted('super', 3))).toBe(false);
  // An event about a job it does not know, and shapes that are not events at all.
  expect(store.isOwnEvent({ type: 'placed', jobId: 'j-unknown', term: 3 } as unknown as Partial<JobEvent>)).toBe(false);
  expect(store.isOwnEvent({ type: 'submitted', term: 3, spec: { pool: 'general' } } as unknown as Partial<JobEvent>)).toBe(false);
  expect(store.isOwnEvent({ type: 'submitted', jobId: 'j-1', term: '3', spec: { pool: 'general' } } as unknown as Partial<JobEvent>)).toBe(false);
});
