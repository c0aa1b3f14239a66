import { createServer, connect, type Socket } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../harness/tcp-proxy';
import { waitUntil } from '../../harness/wait';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

/** An echo server on a free loopback port. */
async function echoServer(): Promise<number> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return (server.address() as { port: number }).port;
}

/** Connects, sends `text`, resolves with what came back, or with the error's code when the connection fails. */
function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    let got = '';
    s.on('connect', () => s.write(text));
    s.on('data', (d) => {
      got += d.toString();
      if (got.length >= text.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(`error:${err.code}`));
    s.on('close', () => resolve(got === '' ? 'closed' : got));
  });
}

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy({ port: await echoServer() });
  cleanups.push(() => p.close());
  return p;
}

test('the proxy forwards both ways while healed', async () => {
  const p = await proxy();
  expect(await roundTrip(p.port, 'hello')).toBe('hello');
  expect(p.connections).toBe(1);
});

test('cut resets open connections and refuses new ones; heal lets them through again', async () => {
  const p = await proxy();
  const s = connect(p.port, '127.0.0.1');
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.on('connect', () => r()));
  await waitUntil(() => (p.connections === 1 ? true : undefined), 5_000);
  p.cut();
  await closed; // the open connection was cut
  expect(p.isCut).toBe(true);
  expect(await roundTrip(p.port, 'x')).toMatch(/^(error:ECONNRESET|closed)$/);
  expect(p.connections).toBe(1);
  p.heal();
  expect(await roundTrip(p.port, 'again')).toBe('again');
  expect(p.connections).toBe(2);
});
