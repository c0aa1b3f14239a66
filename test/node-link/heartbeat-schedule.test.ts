import { expect, test } from 'vitest';
import { HeartbeatSchedule } from '../../src/node-link/heartbeat-schedule';

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
