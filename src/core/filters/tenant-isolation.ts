import { pass, reject, type FilterPlugin } from '../framework';

/**
 * Jobs at the `restricted` data class never share a node with another tenant's jobs: a restricted job
 * needs a node without other tenants' tasks, and any job avoids nodes running another tenant's restricted work.
 * Checked after resources, so a node short of both is counted as short of resources.
 */
export const tenantIsolation: FilterPlugin = {
  name: 'TenantIsolation',
  scope: 'dynamic',
  filter(job, node) {
    return node.isolationBlocks(job.job.tenant, job.job.dataClass === 'restricted') ? reject('restricted-isolation') : pass();
  },
};
