import { describe, expect, it } from 'vitest';
import { TenantDirectory, tenantsFileSchema } from '../../scheduler/tenants';
import { hashToken } from '../../src/protocol';

const directory = () =>
  new TenantDirectory(
    tenantsFileSchema.parse({
      operators: [{ name: 'ops', tokens: [{ sha256: hashToken('qy_ops') }] }],
      tenants: [{ name: 'city-a', tokens: [{ sha256: hashToken('qy_a') }, { sha256: hashToken('qy_a_old'), revoked: true }] }],
    }),
  );

describe('TenantDirectory.authenticate', () => {
  it('answers the same for a header seen before, whatever it resolved to', () => {
    const tenants = directory();
    const headers = ['Bearer qy_a', 'bearer  qy_ops ', 'Bearer qy_a_old', 'Bearer qy_nobody', 'Basic qy_a', 'Bearer'];
    const first = headers.map((h) => tenants.authenticate(h));
    expect(first.map((c) => (c.ok ? `${c.principal.kind}:${c.principal.name}` : c.reason))).toEqual(['tenant:city-a', 'operator:ops', 'revoked', 'unknown', 'missing', 'missing']);
    expect(headers.map((h) => tenants.authenticate(h))).toEqual(first);
    expect(tenants.authenticate(undefined)).toEqual({ ok: false, reason: 'missing' });
  });

  it('keeps answering right past the headers it keeps (a caller trying many tokens)', () => {
    const tenants = directory();
    for (let i = 0; i < 3_000; i++) expect(tenants.authenticate(`Bearer qy_guess_${i}`)).toEqual({ ok: false, reason: 'unknown' });
    const check = tenants.authenticate('Bearer qy_a');
    expect(check.ok && check.principal.name).toBe('city-a');
    expect(tenants.authenticate('Bearer qy_a_old')).toEqual({ ok: false, reason: 'revoked' });
  });
});
