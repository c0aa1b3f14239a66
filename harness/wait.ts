/**
 * Polls `check` every 50 ms until it returns a value. After `timeoutMs` it throws with `describe()` and, when
 * the check last failed by throwing, that error too (as the message's tail and as `cause`): a refused
 * connection or a failed assertion says so, instead of showing up as a plain timeout.
 */
export async function waitUntil<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, describe: () => Promise<string> | string = () => 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    let value: T | undefined;
    try {
      value = await check();
    } catch (err) {
      value = undefined;
      lastError = err;
    }
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const tail = lastError === undefined ? '' : `; the check last failed with: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out: ${await describe()}${tail}`, lastError === undefined ? undefined : { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
