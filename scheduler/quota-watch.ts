import type { KV } from '@nats-io/kv';
import { WatchedKv } from '../src/store/watched-kv';
import type { Logger } from '../src/telemetry/logger';
import { quotasSchema, type Quotas, type TenantDirectory } from './tenants';

/**
 * Quotas operators set at run time (the qy-quotas bucket) override the configured ones. Every replica loads
 * them at start and follows the bucket from then on, so quotas set on any replica hold for every pool's leader.
 */
export class QuotaWatch {
  private readonly bucket: WatchedKv<Quotas>;

  constructor(
    kv: KV,
    private readonly tenants: TenantDirectory,
    log: Logger,
    /** Quotas changed: waiting jobs may fit now. */
    private readonly changed: () => void,
  ) {
    this.bucket = new WatchedKv(kv, quotasSchema, log, 'quotas');
  }

  /** Stores a tenant's quotas (every replica follows); throws when the bucket cannot be written. */
  async put(tenant: string, quotas: Quotas): Promise<void> {
    await this.bucket.put(tenant, quotas);
    this.tenants.setQuotaOverride(tenant, quotas);
  }

  async start(): Promise<void> {
    for (const [tenant, quotas] of await this.bucket.loadAll()) this.tenants.setQuotaOverride(tenant, quotas);
    await this.bucket.follow((tenant, quotas) => {
      this.tenants.setQuotaOverride(tenant, quotas);
      this.changed();
    });
  }

  stop(): void {
    this.bucket.stop();
  }
}
