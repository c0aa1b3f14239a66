/**
 * The Kubernetes bridge: `npm run kube-bridge` (configuration from QY_* environment variables, see the
 * README's "Kubernetes pools").
 */
import { createLogger } from '../telemetry/logger';
import { KubeBridge } from './bridge';
import { loadKubeBridgeConfig } from './config';
import { loadKubeConfig } from './kube-api';

const config = loadKubeBridgeConfig();
const log = createLogger({ name: 'qy-kube-bridge', level: config.logLevel });
const bridge = new KubeBridge(config, loadKubeConfig(config.kubeconfig), log);
await bridge.start();

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    bridge.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}
