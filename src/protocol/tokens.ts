import { createHash, randomBytes } from 'node:crypto';

/**
 * API tokens: what a caller sends as `Authorization: Bearer <token>`, and the SHA-256 under which the
 * tenants file keeps it (never the token itself). `qy token` makes them; the scheduler checks them.
 */

/** The SHA-256 (hex) under which a token is configured. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random API token (256 bits), prefixed so it is recognisable in logs and secret scanners. */
export function newToken(): string {
  return `qy_${randomBytes(32).toString('base64url')}`;
}
