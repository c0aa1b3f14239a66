/**
 * C closed-loop clients over `total` requests: each client sends the next request only once its last one
 * is answered (as `sbatch` users and a task starter do), so the rate is what the system under test allows.
 */
export async function runClosedLoop(clients: number, total: number, request: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const client = async () => {
    while (next < total) await request(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(clients, total)) }, client));
}
