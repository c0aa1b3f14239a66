import { expect, test } from 'vitest';
import { loadAgentConfig } from '../../agents/config';
import { Fence } from '../../src/node-link/fence';
import { FENCE_SLACK_MS, fenceHasFired, fenceIsSafe } from '../../src/protocol';
import { ManualClock } from '../helpers/manual-clock';

/** A probe the test answers by hand: each call waits until the test resolves or rejects it. */
function manualProbe() {
  const waiting: { resolve: (ms: number) => void; reject: (e: Error) => void }[] = [];
  return {
    probe: () => new Promise<number>((resolve, reject) => waiting.push({ resolve, reject })),
    answer: (confirmedMs: number) => waiting.splice(0).forEach((w) => w.resolve(confirmedMs)),
    fail: () => waiting.splice(0).forEach((w) => w.reject(new Error('disconnected'))),
    get pending() {
      return waiting.length;
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

test('the fence fires once contact has been lost for afterMs, once, and is lifted when NATS answers again', async () => {
  const clock = new ManualClock(1_000_000);
  const p = manualProbe();
  const events: string[] = [];
  const fence = new Fence({ afterMs: 4_000, clock, probe: p.probe, onFence: (silentMs) => events.push(`fence ${silentMs}`), onRestore: () => events.push('restore'), probeEveryMs: 1_000 });
  fence.start();
  // Contact confirmed every second up to t0 + 3 s.
  for (let t = 1; t <= 3; t++) {
    clock.advanceTo(1_000_000 + t * 1_000);
    p.answer(1_000_000 + t * 1_000 - 100);
    await settle();
  }
  // Then NATS goes silent: probes hang.
  clock.advanceTo(1_004_000);
  clock.advanceTo(1_006_800);
  expect(events).toEqual([]);
  expect(fence.isFenced).toBe(false);
  clock.advanceTo(1_006_900); // 4 s after the last confirmed heartbeat (sent at t0 + 2.9 s)
  expect(events).toEqual(['fence 4000']);
  clock.advanceTo(1_009_000);
  expect(events).toEqual(['fence 4000']); // once
  expect(fence.isFenced).toBe(true);
  // NATS answers the hanging probe: contact is back.
  p.answer(1_008_950);
  await settle();
  expect(events).toEqual(['fence 4000', 'restore']);
  expect(fence.isFenced).toBe(false);
  fence.stop();
});

test('a failing probe confirms nothing; one probe at a time', async () => {
  const clock = new ManualClock(0);
  const p = manualProbe();
  let fired = 0;
  const fence = new Fence({ afterMs: 2_000, clock, probe: p.probe, onFence: () => fired++, onRestore: () => undefined, probeEveryMs: 500 });
  fence.start();
  clock.advanceTo(500);
  clock.advanceTo(1_000);
  expect(p.pending).toBe(1); // the first still hangs: no second one
  p.fail();
  await settle();
  clock.advanceTo(1_500);
  p.fail();
  await settle();
  clock.advanceTo(2_000);
  expect(fired).toBe(1);
  fence.stop();
});

test('a fence in contact wakes only for its probes: its deadline moves with each confirmation instead of being polled', async () => {
  const manual = new ManualClock(0);
  let wakes = 0;
  const counted = (fn: () => void) => () => {
    wakes++;
    fn();
  };
  const clock = { now: () => manual.now(), setTimeout: (fn: () => void, ms: number) => manual.setTimeout(counted(fn), ms), setInterval: (fn: () => void, ms: number) => manual.setInterval(counted(fn), ms) };
  const p = manualProbe();
  let fired = 0;
  const fence = new Fence({ afterMs: 4_000, clock, probe: p.probe, onFence: () => fired++, onRestore: () => undefined, probeEveryMs: 1_000 });
  fence.start();
  // Ten seconds in steps of 100 ms, each probe answered at once.
  for (let t = 100; t <= 10_000; t += 100) {
    manual.advanceTo(t);
    p.answer(t);
    await settle();
  }
  expect(fired).toBe(0);
  expect(wakes).toBe(10); // the ten probes; a check every 100 ms would have added a hundred wake-ups
  expect(manual.pending()).toBe(2); // the probe interval and the one deadline
  // Silent from here: the deadline fires 4 s after the last confirmation, once.
  manual.advanceTo(13_999);
  expect(fired).toBe(0);
  manual.advanceTo(14_000);
  expect(fired).toBe(1);
  fence.stop();
  expect(manual.pending()).toBe(0);
});

test('the fence rule: fence + kill grace + slack must not exceed the scheduler’s down-after', () => {
  expect(FENCE_SLACK_MS).toBe(500);
  expect(fenceIsSafe({ afterMs: 4_000, graceMs: 5_000 }, 10_000)).toBe(true); // the defaults
  expect(fenceIsSafe({ afterMs: 4_600, graceMs: 5_000 }, 10_000)).toBe(false);
  expect(fenceHasFired({ afterMs: 4_000, graceMs: 5_000 }, 9_499)).toBe(false);
  expect(fenceHasFired({ afterMs: 4_000, graceMs: 5_000 }, 9_500)).toBe(true);
});

test('the agent configuration refuses a fence that could fire after the scheduler requeues', () => {
  expect(loadAgentConfig({})).toMatchObject({ fenceAfterMs: 4_000, killGraceMs: 5_000, downAfterMs: 10_000, cgroups: 'auto', taskPidsMax: 4_096, sandboxUid: 65_534 });
  expect(() => loadAgentConfig({ QY_FENCE_AFTER_MS: '6000' })).toThrow(
    "invalid configuration: QY_FENCE_AFTER_MS (6000) + QY_KILL_GRACE_MS (5000) + 500 ms must not exceed the scheduler's QY_DOWN_AFTER_MS (10000)",
  );
  expect(() => loadAgentConfig({ QY_DOWN_AFTER_MS: '5000' })).toThrow(/QY_DOWN_AFTER_MS \(5000\)/);
  expect(loadAgentConfig({ QY_DOWN_AFTER_MS: '30000', QY_FENCE_AFTER_MS: '20000' }).fenceAfterMs).toBe(20_000);
  expect(loadAgentConfig({ QY_FENCE_AFTER_MS: '1000', QY_KILL_GRACE_MS: '1000', QY_DOWN_AFTER_MS: '2500' }).fenceAfterMs).toBe(1_000);
  // Simulated nodes run nothing to fence.
  expect(loadAgentConfig({ QY_SIMULATE: '3', QY_DOWN_AFTER_MS: '1500' }).simulate).toBe(3);
});
