import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { hashToken, newToken, type DataClass, type QuotasBody } from '../src/protocol';

/** A tenant to put in a generated tenants file. */
export interface LocalTenant {
  name: string;
  displayName?: string;
  weight?: number;
  quotas?: QuotasBody;
  priorityClasses?: string[];
  dataClasses?: DataClass[];
  requestsPerSecond?: number;
  /** Also give it a token that is already revoked (for tests). */
  withRevokedToken?: boolean;
}

/** What a generated tenants file holds: operators (by name, or with their flags) and tenants. */
export interface TenantsSpec {
  operators: (string | { name: string; actAsTenants?: boolean })[];
  tenants: LocalTenant[];
}

/** The tokens of a generated file, in the clear: name → token (revoked ones under `<name>:revoked`). */
export type LocalTokens = Record<string, string>;

/**
 * Writes a tenants file with fresh random tokens (stored as hashes) and returns the tokens. For the demo,
 * the benchmarks and the tests; production files are written by operators (see configs/tenants.example.yaml).
 */
export function writeTenantsFile(path: string, spec: TenantsSpec): LocalTokens {
  const tokens: LocalTokens = {};
  const tokenFor = (name: string) => {
    const token = newToken();
    tokens[name] = token;
    return { sha256: hashToken(token), label: `${name} (generated)` };
  };
  const file = {
    operators: spec.operators.map((op) => (typeof op === 'string' ? { name: op, tokens: [tokenFor(op)] } : { ...op, tokens: [tokenFor(op.name)] })),
    tenants: spec.tenants.map(({ withRevokedToken, ...t }) => {
      const list = [tokenFor(t.name)];
      if (withRevokedToken) {
        const revoked = newToken();
        tokens[`${t.name}:revoked`] = revoked;
        list.push({ sha256: hashToken(revoked), label: 'revoked', revoked: true } as never);
      }
      return { dataClasses: ['public', 'internal', 'sensitive', 'restricted'], ...t, tokens: list };
    }),
  };
  writeFileSync(path, stringify(file), { mode: 0o600 });
  return tokens;
}
