import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, test } from 'vitest';
import { SchedulerClient } from '../../src/kube/scheduler-client';

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

/** A stand-in scheduler replica that answers every request with `answer` and records what it got. */
async function replica(answer: (url: string) => { status: number; body: unknown; headers?: Record<string, string> }): Promise<{ url: string; seen: { method: string; path: string; actAs?: string }[] }> {
  const seen: { method: string; path: string; actAs?: string }[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, actAs: req.headers['x-qy-act-as'] as string | undefined });
    req.resume();
    req.on('end', () => {
      const a = answer(req.url!);
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.body));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('a write refused by a standby goes once to the leader it names', async () => {
  const leader = await replica(() => ({ status: 202, body: { id: 'j1', state: 'pending' } }));
  const standby = await replica(() => ({ status: 503, body: { code: 'QY_ERR_NOT_LEADER', message: 'the leader of pool general is a', statusCode: 503 }, headers: { 'x-qy-leader': leader.url } }));
  const client = new SchedulerClient(standby.url, 'token');
  expect(await client.submit('beijing', { pool: 'general', resources: { cpuMillis: 100, memBytes: 1 } }, 'kube-pod-1')).toMatchObject({ id: 'j1', state: 'pending' });
  expect(standby.seen).toEqual([{ method: 'POST', path: '/v1/jobs', actAs: 'beijing' }]);
  expect(leader.seen).toEqual([{ method: 'POST', path: '/v1/jobs', actAs: 'beijing' }]);
});

test('a 503 without a leader to follow is the caller’s to retry', async () => {
  const starting = await replica(() => ({ status: 503, body: { code: 'QY_ERR_NOT_READY', message: 'The scheduler is not ready: starting', statusCode: 503 } }));
  const client = new SchedulerClient(starting.url, 'token');
  await expect(client.cancel('beijing', 'j1')).rejects.toMatchObject({ status: 503, code: 'QY_ERR_NOT_READY' });
  expect(starting.seen).toHaveLength(1);
});
