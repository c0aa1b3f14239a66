import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { TenantDirectory, loadTenantsFile } from '../../scheduler/tenants';
import { TenantsReloader } from '../../scheduler/tenants-reload';
import { hashToken, type AuditEntry } from '../../src/protocol';
import { silentLog } from '../helpers/stack';
import { ManualClock } from '../helpers/manual-clock';

const dir = mkdtempSync(join(tmpdir(), 'qy-tenants-reload-'));
const path = join(dir, 'tenants.yaml');
afterEach(() => rmSync(path, { force: true }));

/** A tenants file: city-a with token qy_a (revoked or not) and a pool quota; city-b only when asked. */
function write(options: { revoked?: boolean; withB?: boolean; runningJobs?: number } = {}): void {
  const tenants = [{ name: 'city-a', tokens: [{ sha256: hashToken('qy_a'), revoked: options.revoked ?? false }], quotas: { general: { runningJobs: options.runningJobs ?? 10 } } }];
  if (options.withB) tenants.push({ name: 'city-b', tokens: [{ sha256: hashToken('qy_b'), revoked: false }], quotas: { general: { runningJobs: 1 } } });
  writeFileSync(path, stringify({ operators: [{ name: 'ops', tokens: [{ sha256: hashToken('qy_ops') }] }], tenants }));
}

function setUp(pollMs = 1_000) {
  write();
  const directory = new TenantDirectory(loadTenantsFile(path));
  const clock = new ManualClock(0);
  const audits: AuditEntry[] = [];
  const reloader = new TenantsReloader(path, directory, { log: silentLog, clock, pollMs, audit: async (e) => void audits.push(e) });
  reloader.start();
  const who = (token: string) => {
    const check = directory.authenticate(`Bearer ${token}`);
    return check.ok ? check.principal.name : check.reason;
  };
  return { directory, clock, audits, reloader, who };
}

describe('the tenants file is put in force again without a restart', () => {
  test('a token revoked in the file is refused after the next check; a new tenant is known; operator overrides stay', () => {
    const { directory, clock, audits, reloader, who } = setUp();
    directory.setQuotaOverride('city-a', { intelligent: { gpus: 4 } });
    expect(who('qy_a')).toBe('city-a'); // and now remembered (the directory keeps answers per header)
    write({ revoked: true, withB: true, runningJobs: 20 });
    expect(who('qy_a')).toBe('city-a'); // not yet checked
    clock.advanceTo(clock.now() + 1_000);
    expect(who('qy_a')).toBe('revoked');
    expect(who('qy_b')).toBe('city-b');
    expect(directory.quotaOf('city-a', 'general')).toEqual({ runningJobs: 20 });
    expect(directory.quotaOf('city-a', 'intelligent')).toEqual({ gpus: 4 });
    expect(audits).toEqual([{ actor: { kind: 'system', name: 'tenants-file' }, action: 'tenants.reload', target: path, outcome: 'ok', details: { trigger: 'changed', tenants: 2, operators: 1 } }]);
    // The same content is not reloaded again.
    clock.advanceTo(clock.now() + 5_000);
    expect(audits).toHaveLength(1);
    reloader.stop();
  });

  test('a file that does not validate is refused whole, said once, and the tenants in force stay until a good one comes', () => {
    const { clock, audits, reloader, who } = setUp();
    writeFileSync(path, stringify({ tenants: [{ name: 'City A!', tokens: [] }] }));
    clock.advanceTo(clock.now() + 1_000);
    expect(who('qy_a')).toBe('city-a');
    expect(who('qy_ops')).toBe('ops');
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ action: 'tenants.reload', outcome: 'failed', details: { trigger: 'changed', error: expect.stringContaining(`${path}: tenants.0.name`) } });
    clock.advanceTo(clock.now() + 5_000);
    expect(audits).toHaveLength(1);
    // A file that went away is a change too, refused: nobody is locked out by a missing mount.
    rmSync(path);
    clock.advanceTo(clock.now() + 1_000);
    expect(who('qy_a')).toBe('city-a');
    expect(audits[1]).toMatchObject({ outcome: 'failed', details: { error: expect.stringContaining('no such file') } });
    write({ revoked: true });
    clock.advanceTo(clock.now() + 1_000);
    expect(who('qy_a')).toBe('revoked');
    expect(audits.map((a) => a.outcome)).toEqual(['failed', 'failed', 'ok']);
    reloader.stop();
  });

  test('with polling off, only reload() (SIGHUP) reads the file', () => {
    const { clock, reloader, who } = setUp(0);
    write({ revoked: true });
    clock.advanceTo(clock.now() + 60_000);
    expect(who('qy_a')).toBe('city-a');
    expect(reloader.reload('signal')).toBe(true);
    expect(who('qy_a')).toBe('revoked');
    writeFileSync(path, 'tenants: [');
    expect(reloader.reload('signal')).toBe(false);
    expect(who('qy_a')).toBe('revoked');
  });
});
