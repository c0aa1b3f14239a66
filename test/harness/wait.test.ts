import { expect, test } from 'vitest';
import { waitUntil } from '../../harness/wait';

test('waitUntil returns the first value the check gives', async () => {
  let calls = 0;
  expect(await waitUntil(() => (++calls === 3 ? 'done' : undefined), 5_000)).toBe('done');
  expect(calls).toBe(3);
});

test('a timeout names the condition and the error the check last threw, with it as the cause', async () => {
  let calls = 0;
  const failure = await waitUntil(
    () => {
      calls++;
      throw new Error(`connection refused (try ${calls})`);
    },
    0,
    () => 'the server answers',
  ).catch((err: Error) => err);
  expect(failure).toBeInstanceOf(Error);
  expect((failure as Error).message).toBe(`timed out: the server answers; the check last failed with: connection refused (try ${calls})`);
  expect(((failure as Error).cause as Error).message).toBe(`connection refused (try ${calls})`);
});

test('a check that only answered "not yet" times out with the description alone', async () => {
  await expect(waitUntil(() => undefined, 0, () => 'never')).rejects.toThrow(/^timed out: never$/);
});
