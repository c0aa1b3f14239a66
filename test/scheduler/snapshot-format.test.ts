import { gzipSync, gunzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { captureSnapshot, decodeSnapshot, encodeSnapshot, SNAPSHOT_VERSION, type StateSnapshot } from '../../scheduler/state/snapshot';

/** A state of `n` jobs, a third of them ended, with usage, deferrals and positions. */
function stateOf(n: number): StateSnapshot {
  const states = ['pending', 'running', 'succeeded'];
  const jobs = Array.from({ length: n }, (_, i) => ({
    id: `j${String(i).padStart(8, '0')}`,
    tenant: i % 2 ? 'city-a' : 'city-b',
    state: states[i % 3],
    spec: { pool: 'general', name: `job ${i} “quoted” \n newline`, env: { A: 'b' } },
    sched: { id: `j${i}`, priority: i % 7 },
    attempts: i % 3 === 0 ? [] : [{ attemptId: `j${i}-a1`, placement: { tasks: [{ nodeId: 'n1', cpuMillis: 100 }] } }],
    currentIndex: i % 3 === 1 ? 0 : undefined,
  }));
  return {
    v: SNAPSHOT_VERSION,
    seq: 4242,
    takenAtMs: 1_790_000_000_000,
    takenBy: 'r1',
    terms: { general: 3, super: 1 },
    jobs: jobs as never,
    usage: { metered: [{ jobId: 'j00000002', cpu: 1 }] as never, waiting: [{ jobId: 'j00000005' }] as never },
    deferrals: [['j00000003', { untilMs: 5 } as never], ['j00000006', null]],
    lastSeqs: jobs.map((j, i) => [j.id, i + 1] as [string, number]),
    workMix: { general: { all: 1.5e12, cannotWait: 9e11, squares: 2.25e16, atMs: 1_789_999_000_000, sinceMs: 1_789_000_000_000 } },
  };
}

const byId = (s: StateSnapshot) => ({ ...s, jobs: [...s.jobs].sort((a, b) => a.id.localeCompare(b.id)) });
const drop = (o: unknown) => JSON.parse(JSON.stringify(o)); // undefined fields are not stored

describe('state snapshot format', () => {
  test('what is encoded decodes to the same state (ended jobs written after the live ones)', async () => {
    const state = stateOf(300);
    const back = await decodeSnapshot(await encodeSnapshot(captureSnapshot(state)));
    expect(drop(byId(back))).toEqual(drop(byId(state)));
  });

  test('ended jobs are written when encoded, live ones when captured: a live job changed after the capture is stored as it was', async () => {
    const state = stateOf(6);
    const captured = captureSnapshot(state);
    (state.jobs[1] as { state: string }).state = 'succeeded';
    const back = await decodeSnapshot(await encodeSnapshot(captured));
    expect(back.jobs.find((j) => j.id === state.jobs[1].id)?.state).toBe('running');
  });

  test('a snapshot cut short, garbage, or with a bad line is refused with a reason', async () => {
    const data = gunzipSync(await encodeSnapshot(captureSnapshot(stateOf(30))));
    const lines = data.toString('utf8').split('\n');
    await expect(decodeSnapshot(gzipSync(lines.slice(0, -5).join('\n')))).rejects.toThrow(/cut short/);
    await expect(decodeSnapshot(new TextEncoder().encode('not a snapshot'))).rejects.toThrow();
    const bad = [...lines];
    bad[3] = JSON.stringify(['j', { id: 7 }]);
    await expect(decodeSnapshot(gzipSync(bad.join('\n')))).rejects.toThrow(/line 4 \(j\)/);
    await expect(decodeSnapshot(gzipSync(JSON.stringify({ v: 99, seq: 1 })))).rejects.toThrow(/header/);
  });

  test('a snapshot taken before the work mix was kept is read without one; a bad work mix is refused', async () => {
    const { workMix: _, ...before } = stateOf(12);
    const back = await decodeSnapshot(await encodeSnapshot(captureSnapshot(before)));
    expect(back.workMix).toBeUndefined();
    expect(drop(byId(back))).toEqual(drop(byId(before)));
    const bad = { ...stateOf(3), workMix: { general: { all: -1, cannotWait: 0, squares: 0, atMs: 0, sinceMs: 0 } } };
    await expect(decodeSnapshot(await encodeSnapshot(captureSnapshot(bad)))).rejects.toThrow(/header.*workMix/);
  });

  test('a version 1 snapshot (one JSON document) is still read', async () => {
    const state = { ...stateOf(20), v: 1 };
    const back = await decodeSnapshot(gzipSync(JSON.stringify(state)));
    expect(drop(back)).toEqual(drop(state));
  });

  test('decoding a large snapshot gives the event loop turns all along: no stretch without one is more than a quarter of the whole', async () => {
    const data = await encodeSnapshot(captureSnapshot(stateOf(30_000)));
    // Turns are sampled by a chain of setImmediate; the longest stretch between two is compared with the
    // decoding's own length (a ratio in one run, not a time): one JSON.parse of the lot would be most of it.
    let last = performance.now();
    let longest = 0;
    let sampling = true;
    const sample = () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      if (sampling) setImmediate(sample);
    };
    const started = performance.now();
    setImmediate(sample);
    const back = await decodeSnapshot(data);
    // The stretch that ends with the decoding is sampled by one more turn.
    await new Promise((resolve) => setImmediate(resolve));
    const whole = performance.now() - started;
    sampling = false;
    expect(back.jobs).toHaveLength(30_000);
    expect(longest).toBeLessThan(whole / 4);
  });
});
