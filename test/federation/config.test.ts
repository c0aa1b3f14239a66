import { describe, expect, test } from 'vitest';
import { loadSchedulerConfig } from '../../scheduler/config';
import { Scheduler } from '../../scheduler/service';
import { silentLog, testTenantsFile } from '../helpers/stack';

describe('federation configuration', () => {
  test('QY_SITE and QY_FEDERATION_FILE go together', () => {
    expect(() => loadSchedulerConfig({ QY_SITE: 'qy-a' })).toThrow('invalid configuration: QY_SITE and QY_FEDERATION_FILE go together (both set: a federated site; neither: a lone one)');
    expect(() => loadSchedulerConfig({ QY_FEDERATION_FILE: 'configs/federation.example.yaml' })).toThrow('QY_SITE and QY_FEDERATION_FILE go together');
    expect(loadSchedulerConfig({ QY_SITE: 'qy-b', QY_FEDERATION_FILE: 'configs/federation.example.yaml' })).toMatchObject({ site: 'qy-b', federationSummaryIntervalMs: 1000, federationSiteDownAfterMs: 5000 });
  });

  test('a site name that is not a subject token is refused', () => {
    expect(() => loadSchedulerConfig({ QY_SITE: 'Qy A', QY_FEDERATION_FILE: 'configs/federation.example.yaml' })).toThrow(/QY_SITE/);
  });

  test('the site must be one of the federation file', () => {
    const config = loadSchedulerConfig({ QY_SITE: 'qy-z', QY_FEDERATION_FILE: 'configs/federation.example.yaml', QY_TENANTS_FILE: testTenantsFile().file });
    expect(() => new Scheduler(config, silentLog)).toThrow('invalid configuration: QY_SITE qy-z is not a site of configs/federation.example.yaml (qy-a, qy-b, xa)');
  });
});
