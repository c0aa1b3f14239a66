import { expect, test } from 'vitest';
import { runClosedLoop } from '../../loadtests/engine';

test('a closed loop sends every request once, never more at a time than it has clients', async () => {
  const seen: number[] = [];
  let inFlight = 0;
  let most = 0;
  await runClosedLoop(3, 20, async (i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setImmediate(r));
    seen.push(i);
    inFlight--;
  });
  expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  expect(most).toBe(3);
  let calls = 0;
  await runClosedLoop(8, 2, async () => void calls++);
  expect(calls).toBe(2);
});
