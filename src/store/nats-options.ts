import { readFileSync } from 'node:fs';
import { nkeyAuthenticator } from '@nats-io/transport-node';
import { z } from 'zod';
import { fromSetting } from '../lifecycle';

/**
 * How a process authenticates to NATS and secures the connection: one schema shared by the scheduler's and
 * the agents' configuration. All optional: a NATS server without authorization needs none of them.
 */
export const natsAuthConfigSchema = z.object({
  /** NATS user name (with QY_NATS_PASSWORD). Env: QY_NATS_USER */
  natsUser: z.string().optional(),
  /** NATS password. Env: QY_NATS_PASSWORD */
  natsPassword: z.string().optional(),
  /** File with the nkey seed of this process's NATS user (see configs/nats). Env: QY_NATS_NKEY_SEED_FILE */
  natsNkeySeedFile: z.string().optional(),
  /** CA certificate to verify the NATS server (turns TLS on). Env: QY_NATS_TLS_CA */
  natsTlsCa: z.string().optional(),
  /** Client certificate for NATS mutual TLS. Env: QY_NATS_TLS_CERT */
  natsTlsCert: z.string().optional(),
  /** Key of the client certificate. Env: QY_NATS_TLS_KEY */
  natsTlsKey: z.string().optional(),
});
export type NatsAuthConfig = z.infer<typeof natsAuthConfigSchema>;

export const NATS_AUTH_ENV: Record<keyof NatsAuthConfig, string> = {
  natsUser: 'QY_NATS_USER',
  natsPassword: 'QY_NATS_PASSWORD',
  natsNkeySeedFile: 'QY_NATS_NKEY_SEED_FILE',
  natsTlsCa: 'QY_NATS_TLS_CA',
  natsTlsCert: 'QY_NATS_TLS_CERT',
  natsTlsKey: 'QY_NATS_TLS_KEY',
};

/** Connection options of the official client from the configuration. */
export function natsConnectionAuth(config: NatsAuthConfig): { user?: string; pass?: string; authenticator?: ReturnType<typeof seedAuthenticator>; tls?: { caFile?: string; certFile?: string; keyFile?: string } } {
  const tls = config.natsTlsCa || config.natsTlsCert ? { caFile: config.natsTlsCa, certFile: config.natsTlsCert, keyFile: config.natsTlsKey } : undefined;
  return {
    user: config.natsUser,
    pass: config.natsPassword,
    authenticator: config.natsNkeySeedFile ? fromSetting('QY_NATS_NKEY_SEED_FILE', () => seedAuthenticator(readFileSync(config.natsNkeySeedFile!, 'utf8').trim())) : undefined,
    tls,
  };
}

function seedAuthenticator(seed: string) {
  return nkeyAuthenticator(new TextEncoder().encode(seed));
}
