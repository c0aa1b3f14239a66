import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';
import { startDaemon } from './processes';
import { waitUntil } from './wait';

/** A Prometheus (Debian package `prometheus`) on a loopback port with its TSDB in a temporary folder. */
export interface LocalPrometheus {
  url: string;
  /** Runs an instant PromQL query; returns Prometheus' `data` or throws with its error. */
  query(promql: string): Promise<{ resultType: string; result: unknown[] }>;
  dispose(): Promise<void>;
}

/** Where a local Prometheus listens and keeps its data. */
export interface LocalPrometheusOptions {
  /** Port on 127.0.0.1 (default: a free one), e.g. chosen beforehand so the scheduler can be told its URL. */
  port?: number;
  /** Keep the TSDB here, across runs (the demo's charts keep their history); default: a temporary folder, removed on dispose. */
  dataDir?: string;
}

/**
 * Starts Prometheus scraping `targets` (host:port) as job qingyang-scheduler every `intervalSeconds`, with the
 * recording and alerting rules of configs/prometheus/rules evaluated as often.
 */
export async function startPrometheus(targets: string[], intervalSeconds = 1, options: LocalPrometheusOptions = {}): Promise<LocalPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'qy-prom-'));
  mkdirSync(join(dir, 'rules'));
  for (const f of readdirSync('configs/prometheus/rules')) copyFileSync(join('configs/prometheus/rules', f), join(dir, 'rules', f));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${intervalSeconds}s`,
      `  evaluation_interval: ${intervalSeconds}s`,
      'rule_files:',
      '  - rules/recording.yml',
      '  - rules/alerts.yml',
      'scrape_configs:',
      '  - job_name: qingyang-scheduler',
      '    static_configs:',
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const daemon = await startDaemon('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${options.dataDir ?? join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], () =>
    waitUntil(async () => ((await fetch(`${url}/-/ready`)).status === 200 ? true : undefined), 30_000, () => 'prometheus did not start'),
  );
  return {
    url,
    async query(promql: string) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`);
      const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: unknown[] } };
      if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
      return body.data;
    },
    async dispose() {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
