import { connect, createServer, type Socket } from 'node:net';
import { freePort } from './ports';

/**
 * A TCP proxy on a loopback port in front of one server, for partitions and fault injection: point a
 * client at `port` instead of the server, then cut the link and heal it.
 */
export interface TcpProxy {
  /** The proxy's port: point the client here instead of at the server. */
  readonly port: number;
  readonly target: { host: string; port: number };
  /** True while cut. */
  readonly isCut: boolean;
  /** Connections passed through so far (accepted while healed). */
  readonly connections: number;
  /**
   * Cuts the link. `reset` (default) resets every connection and refuses new ones: a partition as the client
   * sees it when the network says so. `blackhole` keeps connections open but drops every byte both ways, and
   * accepts new connections that never get an answer: a partition as TCP sees it when nothing says so (no
   * reset, no error, only silence).
   */
  cut(mode?: 'reset' | 'blackhole'): void;
  /** Heals the link: connections held during a blackhole are closed (their streams lost bytes), new ones pass. */
  heal(): void;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a free port unless given) that forwards to `target`. */
export async function startTcpProxy(target: { host?: string; port: number }, port?: number): Promise<TcpProxy> {
  const to = { host: target.host ?? '127.0.0.1', port: target.port };
  const listenPort = port ?? (await freePort());
  let state: 'open' | 'blackhole' | 'reset' = 'open';
  let connections = 0;
  const pairs = new Set<{ client: Socket; upstream?: Socket; held: boolean }>();

  const server = createServer({ noDelay: true }, (client) => {
    if (state === 'reset') return void client.resetAndDestroy();
    const pair: { client: Socket; upstream?: Socket; held: boolean } = { client, held: state === 'blackhole' };
    pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    if (pair.held) return void client.on('data', () => undefined); // swallowed
    connections++;
    const upstream = connect({ host: to.host, port: to.port, noDelay: true });
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    // Forward unless cut: while cut, bytes are read and dropped.
    client.on('data', (d) => {
      if (state === 'open' && !pair.held) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (state === 'open' && !pair.held) client.write(d);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });

  return {
    port: listenPort,
    target: to,
    get isCut() {
      return state !== 'open';
    },
    get connections() {
      return connections;
    },
    cut(mode = 'reset') {
      state = mode;
      for (const pair of pairs) {
        pair.held = true;
        if (mode === 'reset') {
          pair.client.resetAndDestroy();
          pair.upstream?.destroy();
        }
      }
    },
    heal() {
      state = 'open';
      for (const pair of pairs) if (pair.held) pair.client.destroy();
    },
    async close() {
      state = 'reset';
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
