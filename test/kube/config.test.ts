import { expect, test } from 'vitest';
import { KUBE_ENV, bridgeAgentId, loadKubeBridgeConfig } from '../../src/kube/config';

test('the operator token is required, and a bad variable is named', () => {
  expect(() => loadKubeBridgeConfig({})).toThrow(/QY_KUBE_TOKEN/);
  expect(() => loadKubeBridgeConfig({ QY_KUBE_TOKEN: 't', QY_KUBE_DEFAULT_POOL: 'gpu' })).toThrow(/QY_KUBE_DEFAULT_POOL/);
});

test('defaults: the labels of the README, agent id kube-<cluster>', () => {
  const config = loadKubeBridgeConfig({ QY_KUBE_TOKEN: 't', QY_KUBE_CLUSTER: 'qy-a', QY_NATS_USER: 'bridge' });
  expect(config).toMatchObject({ schedulerName: 'qingyang-scheduler', poolLabel: 'qingyang.cn/pool', tenantLabel: 'qingyang.cn/tenant', natsUser: 'bridge', syncIntervalMs: 2000 });
  expect(config.defaultPool).toBeUndefined();
  expect(bridgeAgentId(config)).toBe('kube-qy-a');
  expect(bridgeAgentId({ ...config, agentId: 'bridge-1' })).toBe('bridge-1');
});

test('every variable is QY_ prefixed', () => {
  for (const name of Object.values(KUBE_ENV)) expect(name).toMatch(/^QY_[A-Z0-9_]+$/);
});
