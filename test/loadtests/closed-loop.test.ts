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

test('after a failure no client takes another request, and the loop rejects with that failure', async () => {
  const started: number[] = [];
  const run = runClosedLoop(2, 10, async (i) => {
    started.push(i);
    await new Promise((r) => setImmediate(r));
    if (i === 2) throw new Error('request 2 failed');
  });
  await expect(run).rejects.toThrow('request 2 failed');
  await new Promise((r) => setImmediate(r));
  // 0 and 1, then 2 and 3 as they ended; nothing once 2 had failed.
  expect(started.sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
});
