/**
 * Runs `work(0)` … `work(total - 1)` with at most `limit` under way at once: each of `limit` workers takes the
 * next index when its last one is done (closed-loop clients, a bounded fan-out). Resolves when all are done;
 * rejects with the first failure (the other workers finish what they hold).
 */
export async function runLimited(limit: number, total: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, total)) }, worker));
}
