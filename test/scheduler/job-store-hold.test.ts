import { describe, expect, test } from 'vitest';
import type { JobEvent, Pool } from '../../src/protocol';
import type { JobLog } from '../../src/store/job-log';
import { createLogger } from '../../src/telemetry/logger';
import { SchedulerMetrics, type MetricsSource } from '../../src/telemetry/metrics';
import { JobStore } from '../../scheduler/job-store';
import type { LeadershipView } from '../../scheduler/leadership';

/** A job log whose appends are stored only when the test says so. */
function manualLog() {
  const waiting: { event: JobEvent; store: () => void }[] = [];
  let seq = 0;
  const log = {
    append(event: JobEvent) {
      return new Promise((resolve) => waiting.push({ event, store: () => resolve({ seq: ++seq, duplicate: false }) }));
    },
  } as unknown as JobLog;
  return { log, waiting, storeNext: () => waiting.shift()!.store() };
}

const leading: LeadershipView = { leads: () => true, termOf: () => 1, ledPools: ['general'] as Pool[], leaderOf: () => undefined, confirm: () => undefined };
const submitted = (i: number): JobEvent => ({
  type: 'submitted', v: 1, jobId: `j${i}`, tenant: 't', submittedAtMs: 0, priority: 0, maxAttempts: 1,
  spec: { name: `j${i}`, pool: 'general', tasks: 1, resources: { cpuMillis: 100, memBytes: 1 }, priorityClass: 'normal', dataClass: 'public' },
}) as unknown as JobEvent;
const tick = () => new Promise((r) => setImmediate(r));

describe('JobStore hold: a snapshot gets its quiet moment under steady load', () => {
  test('held, new decisions wait until what was in flight is stored; the waiter runs with nothing in flight, then they go on', async () => {
    const { log, waiting, storeNext } = manualLog();
    let relieved = 0;
    const store = new JobStore(() => log, leading, createLogger({ level: 'silent', name: 't' }), new SchedulerMetrics({} as unknown as MetricsSource), { runEffects: () => undefined, appendFailed: () => undefined, relieved: () => relieved++ }, 0);
    store.commit(submitted(1));
    let ranWith: number | undefined;
    store.whenSettled(() => (ranWith = store.inFlight));
    expect(store.gate).toBeUndefined();
    store.hold();
    expect(store.gate).toBeInstanceOf(Promise);
    // A decision nobody waits on is kept back while held: nothing new goes in flight.
    store.commitWhenOpen(submitted(2));
    await tick();
    expect(store.inFlight).toBe(1);
    expect(waiting).toHaveLength(1);
    storeNext();
    await store.gate;
    await tick();
    expect(ranWith).toBe(0);
    expect(store.gate).toBeUndefined();
    expect(relieved).toBe(1);
    // The kept decision went in after the waiter ran.
    expect(waiting.map((w) => w.event.jobId)).toEqual(['j2']);
  });

  test('hold does nothing when nothing is in flight or nobody waits for quiet', () => {
    const { log } = manualLog();
    const store = new JobStore(() => log, leading, createLogger({ level: 'silent', name: 't' }), new SchedulerMetrics({} as unknown as MetricsSource), { runEffects: () => undefined, appendFailed: () => undefined, relieved: () => undefined }, 0);
    store.hold();
    expect(store.gate).toBeUndefined();
    store.commit(submitted(1));
    store.hold();
    expect(store.gate).toBeUndefined();
  });
});
