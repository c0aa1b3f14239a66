import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

/** A nats-server with JetStream on a loopback port, for the demo, the tests and the benchmarks. */
export interface LocalNatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store. */
  restart(): Promise<void>;
  /** Stops it and removes its store when the store was temporary. */
  dispose(): Promise<void>;
  /** Process id of the running server. */
  readonly pid: number | undefined;
}

export interface NatsServerOptions {
  /** JetStream store; a temporary folder when absent. */
  storeDir?: string;
  port?: number;
  /** A configuration file (accounts, permissions, TLS); port and store are still set by flags. */
  configFile?: string;
  binary?: string;
}

/** Starts `nats-server -js` on 127.0.0.1 and resolves once it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<LocalNatsServer> {
  const temporary = options.storeDir === undefined;
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'qy-nats-'));
  const port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;

  const launch = async () => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir];
    if (options.configFile) args.unshift('-c', options.configFile);
    const proc = spawn(options.binary ?? 'nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) => proc.on('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${stderr}`))));
    exited.catch(() => undefined);
    child = proc;
    await Promise.race([waitForInfo(port, 15_000), exited]);
  };

  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };

  await launch();
  return {
    get pid() {
      return child?.pid;
    },
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async dispose() {
      await stop();
      if (temporary) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/** Resolves when a TCP connection to the port receives the server's INFO line. */
async function waitForInfo(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      const done = (value: boolean) => {
        socket.destroy();
        resolve(value);
      };
      socket.once('data', (d) => done(d.toString().startsWith('INFO')));
      socket.once('error', () => done(false));
      socket.setTimeout(1_000, () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
