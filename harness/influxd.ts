import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';
import { startDaemon } from './processes';
import { waitUntil } from './wait';

/** An InfluxDB 1.x (Debian package `influxdb`) on loopback ports with its data in a temporary folder. */
export interface LocalInfluxd {
  url: string;
  dispose(): Promise<void>;
}

/** Starts `influxd` and resolves once /ping answers. */
export async function startInfluxd(): Promise<LocalInfluxd> {
  const dir = mkdtempSync(join(tmpdir(), 'qy-influx-'));
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const config = join(dir, 'influxdb.conf');
  writeFileSync(
    config,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpcPort}"`,
      '[meta]',
      `  dir = "${join(dir, 'meta')}"`,
      '[data]',
      `  dir = "${join(dir, 'data')}"`,
      `  wal-dir = "${join(dir, 'wal')}"`,
      '  query-log-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${httpPort}"`,
      '  log-enabled = false',
      '[continuous_queries]',
      '  run-interval = "1s"',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${httpPort}`;
  const daemon = await startDaemon('influxd', ['-config', config], () => waitUntil(async () => ((await fetch(`${url}/ping`)).status === 204 ? true : undefined), 20_000, () => 'influxd did not start'));
  return {
    url,
    async dispose() {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
