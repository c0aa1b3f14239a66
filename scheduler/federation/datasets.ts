import { randomBytes } from 'node:crypto';
import type { RoutedDataset } from '../../src/federation';
import { datasetSiteOf, type DatasetLineage, type DatasetRecord, type DatasetRegister, type DatasetView, type DestroyConfirmation, type JobSpec } from '../../src/protocol';
import { QY_ERR_DATASET_DESTROYED, QY_ERR_DATASET_NOT_FOUND, QY_ERR_FORBIDDEN, QY_ERR_STORE_UNAVAILABLE, QY_ERR_UNKNOWN_SITE } from '../../src/errors';
import type { DatasetStore } from '../../src/store/federation-buckets';
import type { AuditActor, AuditEntry } from '../../src/store/audit-log';
import type { Clock } from '../../src/time';
import type { Principal } from '../tenants';

/** How many uses a dataset's record keeps (the audit chain keeps them all). */
const MAX_LINEAGE_ENTRIES = 1_000;

/** What dataset operations need: the store, the clock, the audit chain and, when federated, the known sites. */
export interface DatasetDeps {
  store: DatasetStore;
  clock: Clock;
  /** This site's name; undefined when not federated (ids then read `ds-local-…`). */
  site: string | undefined;
  /** Names of the federation's sites, to check a registration's site. */
  sites: string[];
  audited(actor: Principal | AuditActor, entry: Omit<AuditEntry, 'actor' | 'outcome'>): Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Datasets as records: registration, reads with tenant isolation, lineage and destruction confirmations. */
export class DatasetOps {
  constructor(private readonly d: DatasetDeps) {}

  private get home(): string {
    return this.d.site ?? 'local';
  }

  /** Registers a dataset for the calling tenant; its id names this site, whose bucket holds the record. */
  async register(body: DatasetRegister, principal: Principal): Promise<DatasetView> {
    if (principal.kind !== 'tenant') throw new QY_ERR_FORBIDDEN(`only tenants register datasets; ${principal.name} is an operator`);
    const site = body.site ?? this.home;
    if (this.d.site !== undefined && !this.d.sites.includes(site)) throw new QY_ERR_UNKNOWN_SITE(site, this.d.sites.join(', '));
    const record: DatasetRecord = {
      id: `ds-${this.home}-${randomBytes(8).toString('hex')}`,
      name: body.name,
      tenant: principal.name,
      site,
      sizeBytes: body.sizeBytes,
      classification: body.classification,
      contentHash: body.contentHash,
      registeredAt: iso(this.d.clock.now()),
      registeredBy: principal.name,
      lineage: [],
    };
    await this.d.store.create(record).catch(storeError);
    await this.d.audited(principal, { action: 'dataset.register', target: record.id, details: { name: record.name, site, sizeBytes: record.sizeBytes, classification: record.classification, contentHash: record.contentHash } });
    return viewOf(record);
  }

  /** A dataset the principal may see: another tenant's is "not found", so ids do not leak. */
  async get(id: string, principal: Principal): Promise<DatasetRecord> {
    const site = datasetSiteOf(id);
    if (!site) throw new QY_ERR_DATASET_NOT_FOUND(id);
    const record = await this.d.store.get(site, id).catch((err: Error) => {
      if (/stream not found|bucket not found|not found/i.test(err.message)) return undefined;
      throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
    });
    if (!record || (principal.kind === 'tenant' && record.tenant !== principal.name)) throw new QY_ERR_DATASET_NOT_FOUND(id);
    return record;
  }

  async view(id: string, principal: Principal): Promise<DatasetView> {
    return viewOf(await this.get(id, principal));
  }

  async lineage(id: string, principal: Principal): Promise<DatasetLineage> {
    const record = await this.get(id, principal);
    return { dataset: viewOf(record), jobs: record.lineage };
  }

  /** Records the destruction of a dataset: who, when, and the hash of what was destroyed. Destroying twice is refused. */
  async destroy(id: string, principal: Principal): Promise<DestroyConfirmation> {
    const record = await this.get(id, principal);
    if (record.destroyed) throw new QY_ERR_DATASET_DESTROYED(id, `by ${record.destroyed.by} at ${record.destroyed.at}`);
    const destroyed = { by: principal.name, at: iso(this.d.clock.now()), contentHash: record.contentHash };
    let already: DatasetRecord['destroyed'];
    await this.d.store
      .update(datasetSiteOf(id)!, id, (r) => {
        already = r.destroyed;
        return r.destroyed ? r : { ...r, destroyed };
      })
      .catch(storeError);
    if (already) throw new QY_ERR_DATASET_DESTROYED(id, `by ${already.by} at ${already.at}`);
    await this.d.audited(principal, { action: 'dataset.destroy', target: id, details: { contentHash: record.contentHash, site: record.site } });
    return { id, destroyedBy: destroyed.by, destroyedAt: destroyed.at, contentHash: destroyed.contentHash, site: record.site };
  }

  /** The job's inputs as the router sees them; every input and output must be the tenant's and not destroyed. */
  async resolve(spec: JobSpec, principal: Principal): Promise<RoutedDataset[]> {
    const inputs: RoutedDataset[] = [];
    for (const id of spec.inputs ?? []) {
      const r = await this.usable(id, principal);
      inputs.push({ id, site: r.site, sizeBytes: r.sizeBytes, classification: r.classification });
    }
    for (const id of spec.outputs ?? []) await this.usable(id, principal);
    return inputs;
  }

  private async usable(id: string, principal: Principal): Promise<DatasetRecord> {
    const r = await this.get(id, principal);
    if (r.destroyed) throw new QY_ERR_DATASET_DESTROYED(id, `by ${r.destroyed.by} at ${r.destroyed.at}`);
    return r;
  }

  /** Records that a job reads its inputs and writes its outputs (in each record and in the audit chain). */
  async recordUse(jobId: string, spec: JobSpec, principal: Principal, site: string): Promise<void> {
    const at = iso(this.d.clock.now());
    const uses = [...(spec.inputs ?? []).map((id) => ({ id, role: 'read' as const })), ...(spec.outputs ?? []).map((id) => ({ id, role: 'wrote' as const }))];
    for (const use of uses) {
      const entry = { jobId, role: use.role, site, tenant: principal.name, at };
      await this.d.store.update(datasetSiteOf(use.id)!, use.id, (r) => ({ ...r, lineage: [...r.lineage, entry].slice(-MAX_LINEAGE_ENTRIES) })).catch(storeError);
      await this.d.audited(principal, { action: use.role === 'read' ? 'dataset.read' : 'dataset.write', target: use.id, details: { jobId, site } });
    }
  }
}

function viewOf(record: DatasetRecord): DatasetView {
  const { lineage: _lineage, ...view } = record;
  return view;
}

function storeError(err: Error): never {
  throw new QY_ERR_STORE_UNAVAILABLE(err.message, { cause: err });
}
