import { z } from 'zod';
import { existsSync } from 'node:fs';
import { loadDataFile } from '../src/files';
import { ConfigError } from '../src/lifecycle';
import { DATA_CLASSES, billingClassSchema, dataClassSchema, hashToken, poolSchema, priorityClassNameSchema, type DataClass, type Pool } from '../src/protocol';

const nameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lower-case name (letters, digits, -)');

/** A token as the configuration keeps it: only its SHA-256, never the token itself. */
export const tokenEntrySchema = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the token'),
  /** What the token is for, to tell tokens apart when one must be revoked. */
  label: z.string().max(128).optional(),
  revoked: z.boolean().default(false),
});

/** Limits of one tenant in one pool; an absent limit is no limit. */
export const poolQuotaSchema = z.strictObject({
  cpuMillis: z.number().int().min(0).optional(),
  gpus: z.number().int().min(0).optional(),
  /** Jobs placed or running at once. */
  runningJobs: z.number().int().min(0).optional(),
  /** Jobs waiting in the queue at once; a submission beyond it is refused with 429. */
  pendingJobs: z.number().int().min(0).optional(),
});
export type PoolQuota = z.infer<typeof poolQuotaSchema>;

export const quotasSchema = z.partialRecord(poolSchema, poolQuotaSchema);
export type Quotas = z.infer<typeof quotasSchema>;

export const tenantConfigSchema = z.strictObject({
  name: nameSchema,
  displayName: z.string().max(128).optional(),
  tokens: z.array(tokenEntrySchema).default([]),
  /** Share of the cluster relative to other tenants (dominant resource fairness). */
  weight: z.number().positive().max(1000).default(1),
  quotas: quotasSchema.default({}),
  /** Priority classes the tenant may use; all when absent. */
  priorityClasses: z.array(priorityClassNameSchema).optional(),
  /** Data classification levels the tenant may submit. */
  dataClasses: z.array(dataClassSchema).default(['public', 'internal']),
  /** Pricing class: `public-interest` for public governance and welfare work, priced as the price table says (free or discounted). */
  billingClass: billingClassSchema.default('standard'),
  /** API requests per second for this tenant (a burst of twice as many is allowed). */
  requestsPerSecond: z.number().int().min(1).max(1_000_000).default(100),
});
export type TenantConfig = z.infer<typeof tenantConfigSchema>;

export const operatorConfigSchema = z.strictObject({
  name: nameSchema,
  tokens: z.array(tokenEntrySchema).default([]),
  /** May act as any tenant by naming it in the X-Qy-Act-As header (a bridge such as the Kubernetes one); audited as the tenant, via this operator. */
  actAsTenants: z.boolean().default(false),
});

/** `configs/tenants.yaml`: the paired cities and agencies that use the cluster, and its operators. */
export const tenantsFileSchema = z
  .strictObject({
    operators: z.array(operatorConfigSchema).default([]),
    tenants: z.array(tenantConfigSchema).default([]),
  })
  .superRefine((file, ctx) => {
    const names = new Set<string>();
    const hashes = new Set<string>();
    for (const [i, who] of [...file.operators, ...file.tenants].entries()) {
      if (names.has(who.name)) ctx.addIssue({ code: 'custom', path: [i], message: `${who.name} is defined twice` });
      names.add(who.name);
      for (const t of who.tokens) {
        if (hashes.has(t.sha256)) ctx.addIssue({ code: 'custom', path: [i], message: `a token of ${who.name} is also used elsewhere` });
        hashes.add(t.sha256);
      }
    }
  });
export type TenantsFile = z.infer<typeof tenantsFileSchema>;

/** Who is calling: a tenant (its own jobs) or an operator (everything). */
export type Principal = { kind: 'tenant'; name: string; tenant: TenantConfig; via?: string } | { kind: 'operator'; name: string; actAsTenants?: boolean };

/** What a bearer token resolved to. */
export type TokenCheck = { ok: true; principal: Principal } | { ok: false; reason: 'missing' | 'unknown' | 'revoked' };

/** Reads and validates a tenants file (YAML or JSON); the error names the file and the field, and where to start from when there is none. */
export function loadTenantsFile(path: string): TenantsFile {
  if (!existsSync(path)) throw new ConfigError(`${path}: no such file (the tenants, operators and their token hashes: start from configs/tenants.example.yaml)`);
  return loadDataFile(path, tenantsFileSchema);
}

/** Authorization headers whose answers a TenantDirectory keeps. */
const CHECKED_HEADERS = 1_024;

/**
 * Tenants, operators and their tokens, with quota overrides set at run time by operators. Tokens are
 * looked up by hash; a revoked token is recognised as such so the audit log can say so.
 */
export class TenantDirectory {
  private readonly byHash = new Map<string, { principal: Principal; revoked: boolean }>();
  private readonly tenants = new Map<string, TenantConfig>();
  private readonly quotaOverrides = new Map<string, Quotas>();
  /** Answers for the Authorization headers seen last (see authenticate). */
  private readonly checked = new Map<string, TokenCheck>();

  private current: TenantsFile;

  constructor(file: TenantsFile) {
    this.current = file;
    this.index(file);
  }

  /** The tenants file in force. */
  get file(): TenantsFile {
    return this.current;
  }

  /**
   * Puts a newer tenants file in force at once (a reload): its tenants, operators and tokens, a revoked token
   * refused from the next request on. Quota overrides set by operators at run time stay.
   */
  replace(file: TenantsFile): void {
    this.byHash.clear();
    this.tenants.clear();
    this.checked.clear();
    this.current = file;
    this.index(file);
  }

  private index(file: TenantsFile): void {
    for (const op of file.operators) for (const t of op.tokens) this.byHash.set(t.sha256, { principal: { kind: 'operator', name: op.name, actAsTenants: op.actAsTenants }, revoked: t.revoked });
    for (const tenant of file.tenants) {
      this.tenants.set(tenant.name, tenant);
      for (const t of tenant.tokens) this.byHash.set(t.sha256, { principal: { kind: 'tenant', name: tenant.name, tenant }, revoked: t.revoked });
    }
  }

  /**
   * Resolves the value of an Authorization header. The answer depends only on the header and the tokens, which
   * change only with the file (replace), so the last headers' answers are kept: hashing the token was about a
   * fiftieth of the scheduler's CPU on the submission path, for the same few tokens every time.
   */
  authenticate(authorization: string | undefined): TokenCheck {
    if (authorization === undefined) return { ok: false, reason: 'missing' };
    const known = this.checked.get(authorization);
    if (known) return known;
    const check = this.check(authorization);
    // Bounded: a caller trying many tokens only starts the memory over.
    if (this.checked.size >= CHECKED_HEADERS) this.checked.clear();
    this.checked.set(authorization, check);
    return check;
  }

  private check(authorization: string): TokenCheck {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return { ok: false, reason: 'missing' };
    const entry = this.byHash.get(hashToken(match[1]));
    if (!entry) return { ok: false, reason: 'unknown' };
    if (entry.revoked) return { ok: false, reason: 'revoked' };
    return { ok: true, principal: entry.principal };
  }

  /** A bridge operator acting as a tenant; undefined when the operator may not, or the tenant does not exist. */
  actAs(operator: Principal, tenant: string): Principal | undefined {
    const config = this.tenants.get(tenant);
    if (operator.kind !== 'operator' || !operator.actAsTenants || !config) return undefined;
    return { kind: 'tenant', name: tenant, tenant: config, via: operator.name };
  }

  tenant(name: string): TenantConfig | undefined {
    return this.tenants.get(name);
  }

  list(): TenantConfig[] {
    return [...this.tenants.values()];
  }

  weightOf(tenant: string): number {
    return this.tenants.get(tenant)?.weight ?? 1;
  }

  /** The quota in force: an operator's override, else the configured one. */
  quotaOf(tenant: string, pool: Pool): PoolQuota {
    return this.quotaOverrides.get(tenant)?.[pool] ?? this.tenants.get(tenant)?.quotas[pool] ?? {};
  }

  quotasOf(tenant: string): Quotas {
    return { ...this.tenants.get(tenant)?.quotas, ...this.quotaOverrides.get(tenant) };
  }

  setQuotaOverride(tenant: string, quotas: Quotas): void {
    this.quotaOverrides.set(tenant, quotas);
  }

  mayUseClass(tenant: string, priorityClass: string): boolean {
    const allowed = this.tenants.get(tenant)?.priorityClasses;
    return allowed === undefined || allowed.includes(priorityClass);
  }

  mayUseDataClass(tenant: string, dataClass: DataClass): boolean {
    return this.tenants.get(tenant)?.dataClasses.includes(dataClass) ?? false;
  }
}

/** All data classes, for tenants that may use every level. */
export const ALL_DATA_CLASSES: readonly DataClass[] = DATA_CLASSES;
