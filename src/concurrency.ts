/**
 * Runs `work(0)` … `work(total - 1)` with at most `limit` under way at once: each of `limit` workers takes the
 * next index when its last one is done (closed-loop clients, a bounded fan-out). Resolves when all are done.
 * After a failure no worker takes another index; it rejects with that failure (the others finish what they hold).
 */
export async function runLimited(limit: number, total: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < total) {
      try {
        await work(next++);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, total)) }, worker));
}
