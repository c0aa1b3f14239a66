/**
 * The Kubernetes bridge: `npm run kube-bridge` (configuration from QY_* environment variables, see the
 * README's "Kubernetes pools").
 */
import { fromSetting, runProgram, stopOnSignals } from '../lifecycle';
import { createLogger } from '../telemetry/logger';
import { KubeBridge } from './bridge';
import { loadKubeBridgeConfig } from './config';
import { loadKubeConfig } from './kube-api';

const { log, bridge } = await runProgram('qy-kube-bridge', async () => {
  const config = loadKubeBridgeConfig();
  const log = createLogger({ name: 'qy-kube-bridge', level: config.logLevel });
  const kubeConfig = config.kubeconfig ? fromSetting('QY_KUBECONFIG', () => loadKubeConfig(config.kubeconfig)) : loadKubeConfig(undefined);
  const bridge = new KubeBridge(config, kubeConfig, log);
  await bridge.start();
  return { log, bridge };
});

stopOnSignals(log, () => bridge.stop());
