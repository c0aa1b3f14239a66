import { expect, test } from 'vitest';
import { HeartbeatSchedule, phaseShareOf } from '../../src/node-link/heartbeat-schedule';

test('nodes that come and go (the bridge\'s): a new node is due at once, phases are spread again, a removed node is forgotten', () => {
  const s = new HeartbeatSchedule(['a', 'b'], 1_000);
  expect(s.takeDue(0)).toEqual(['a', 'b']);
  // Unchanged set: nothing moves.
  s.setNodes(['b', 'a']);
  expect(s.nextDueAtMs()).toBe(500);
  // c joins: due at once; a and b keep their last heartbeat and move to the new phases (0, 333, 666).
  s.setNodes(['a', 'b', 'c']);
  expect(s.takeDue(10)).toEqual(['c']);
  expect(s.nextDueAtMs()).toBe(333);
  expect(s.takeDue(333)).toEqual(['b']);
  // a leaves: b and c spread over the interval (0, 500), each next within one interval of its last.
  s.setNodes(['b', 'c']);
  expect(s.lastSentAtMs('a')).toBe(-Infinity);
  expect(s.takeDue(500)).toEqual(['c']);
  expect(s.takeDue(999)).toEqual([]);
  expect(s.takeDue(1_000)).toEqual(['b']);
  expect(s.takeDue(1_500)).toEqual(['c']);
});

test("a link's offset shifts its nodes' phases, wrapping around the interval", () => {
  const s = new HeartbeatSchedule(['a', 'b'], 1_000, 0.7);
  expect(s.takeDue(0)).toEqual(['a', 'b']);
  // a at 0.7 of the interval, b at 0.7 + 1/2 = 0.2.
  expect(s.nextDueAtMs()).toBe(200);
  expect(s.takeDue(200)).toEqual(['b']);
  expect(s.takeDue(699)).toEqual([]);
  expect(s.takeDue(700)).toEqual(['a']);
  // A new interval keeps the offset: 0.7 and 0.2 of 400 ms.
  s.setInterval(400);
  expect(s.takeDue(880)).toEqual(['b']);
  expect(s.takeDue(1_080)).toEqual(['a']);
});

test('agents started together do not all send their heartbeats at the same point of the second', () => {
  // Without an offset every agent of one node had phase 0: 100 agents woke together on every second.
  const shares = Array.from({ length: 100 }, (_, i) => phaseShareOf(`real-${String(i + 1).padStart(3, '0')}`));
  const tenths = new Array<number>(10).fill(0);
  for (const x of shares) {
    expect(x).toBeGreaterThanOrEqual(0);
    expect(x).toBeLessThan(1);
    tenths[Math.floor(x * 10)]++;
  }
  expect(Math.max(...tenths)).toBeLessThanOrEqual(20);
  // The same agent keeps its point across restarts.
  expect(phaseShareOf('real-001')).toBe(shares[0]);
  const at = (share: number) => {
    const s = new HeartbeatSchedule(['n'], 1_000, share);
    s.takeDue(0);
    return s.nextDueAtMs();
  };
  expect(new Set(shares.map(at)).size).toBeGreaterThan(90);
});
