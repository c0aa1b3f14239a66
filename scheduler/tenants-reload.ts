import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AuditEntry } from '../src/protocol';
import type { Logger } from '../src/telemetry/logger';
import type { Clock, Timer } from '../src/time';
import { loadTenantsFile, type TenantDirectory } from './tenants';

/** What started a reload. */
export type ReloadTrigger = 'signal' | 'changed';

/**
 * Keeps the tenant directory in step with its file (QY_TENANTS_FILE) without a restart: a token revoked, a
 * tenant added or a quota changed in the file takes effect on SIGHUP, or within `pollMs` when the file's
 * content changes (a mounted ConfigMap is replaced behind a symlink, so the content is compared, not times).
 * A file that does not read or validate is refused whole: the directory in force stays, the error is logged
 * and audited once per content, never half applied.
 */
export class TenantsReloader {
  private digest: string | undefined;
  private timer: Timer | undefined;

  constructor(
    private readonly path: string,
    private readonly directory: TenantDirectory,
    private readonly deps: { log: Logger; clock: Clock; pollMs: number; audit?: (entry: AuditEntry) => Promise<void> },
  ) {
    this.digest = this.digestNow();
  }

  /** Watches the file's content every `pollMs` (0: only on reload()). */
  start(): void {
    if (this.deps.pollMs > 0 && !this.timer) this.timer = this.deps.clock.setInterval(() => this.check(), this.deps.pollMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Reads the file and puts it in force; on failure keeps the directory as it is. Returns whether it was put in force. */
  reload(trigger: ReloadTrigger): boolean {
    this.digest = this.digestNow();
    try {
      const file = loadTenantsFile(this.path);
      this.directory.replace(file);
      const counts = { tenants: file.tenants.length, operators: file.operators.length };
      this.deps.log.info({ file: this.path, trigger, ...counts }, 'tenants file reloaded');
      this.audit({ outcome: 'ok', details: { trigger, ...counts } });
      return true;
    } catch (err) {
      const error = (err as Error).message;
      this.deps.log.error({ file: this.path, trigger, err: error }, 'tenants file not reloaded: the tenants in force stay');
      this.audit({ outcome: 'failed', details: { trigger, error } });
      return false;
    }
  }

  /** Reloads when the content differs from what was last read (a file that went away is a change, and fails). */
  private check(): void {
    if (this.digestNow() !== this.digest) this.reload('changed');
  }

  private digestNow(): string | undefined {
    try {
      return createHash('sha256').update(readFileSync(this.path)).digest('hex');
    } catch {
      return undefined;
    }
  }

  private audit(entry: Pick<AuditEntry, 'outcome' | 'details'>): void {
    void this.deps.audit?.({ actor: { kind: 'system', name: 'tenants-file' }, action: 'tenants.reload', target: this.path, ...entry }).catch((err: Error) => this.deps.log.error({ err: err.message }, 'audit record not stored'));
  }
}
