/**
 * NATS credentials without their secrets: checking a NatsAuth, describing one for a message (its kind,
 * the user name, an nkey's public key; never the password, token or seed), and server URLs with any
 * `user:password@` masked. No NATS client here: the CLI and the server spawner use it too.
 */

import { configError } from './errors.js';
import type { NatsAuth } from './types.js';

/** Environment variables the CLI reads NATS secrets from; processes it starts do not need them. */
export const NATS_SECRET_ENV: readonly string[] = ['RACKEMU_NATS_PASSWORD', 'RACKEMU_NATS_TOKEN'];

/** A user seed: 'S' (seed) + 'U' (user) + base32, 58 characters in all. */
const USER_SEED = /^SU[A-Z2-7]{56}$/;

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * Throws RACKEMU_ERR_TRANSPORT_CONFIG unless `auth` is undefined or a well-formed NatsAuth. The
 * message names the field that is wrong, never its value.
 */
export function checkNatsAuth(auth: unknown): NatsAuth | undefined {
  if (auth === undefined) return undefined;
  const a = auth as Record<string, unknown> | null;
  const bad = (what: string) =>
    configError(`NATS credentials: ${what}`, { path: 'auth', expected: 'user + pass, token or nkey seed' });
  switch (a?.kind) {
    case 'user':
      if (!nonEmpty(a.user)) throw bad('the user name is empty');
      if (!nonEmpty(a.pass)) throw bad(`the password of user ${JSON.stringify(a.user)} is empty`);
      return { kind: 'user', user: a.user, pass: a.pass };
    case 'token':
      if (!nonEmpty(a.token)) throw bad('the token is empty');
      return { kind: 'token', token: a.token };
    case 'nkey':
      if (typeof a.seed !== 'string' || !USER_SEED.test(a.seed)) {
        throw bad('the nkey seed is not a user seed (58 characters starting with SU)');
      }
      return { kind: 'nkey', seed: a.seed };
    default:
      throw bad(`unknown kind ${JSON.stringify(a?.kind)} (user, token or nkey)`);
  }
}

/**
 * What a connection presented, for messages: `no credentials`, `user "alice" with a password`,
 * `a token`, `nkey U...` (the public key, when the caller knows it).
 */
export function describeNatsAuth(auth: NatsAuth | undefined, nkeyPublic?: string): string {
  switch (auth?.kind) {
    case undefined:
      return 'no credentials';
    case 'user':
      return `user ${JSON.stringify(auth.user)} with a password`;
    case 'token':
      return 'a token';
    case 'nkey':
      return nkeyPublic ? `nkey ${nkeyPublic}` : 'an nkey';
  }
}

/** The secret of `auth`: password, token or seed ('' without credentials). */
export function secretOf(auth: NatsAuth | undefined): string {
  return auth?.kind === 'user' ? auth.pass : auth?.kind === 'token' ? auth.token : (auth?.seed ?? '');
}

/** `text` with the secret of `auth` masked (servers and libraries should not echo one; never print it). */
export function maskSecret(text: string, auth: NatsAuth | undefined): string {
  const secret = secretOf(auth);
  return secret ? text.split(secret).join('***') : text;
}

/** A server URL fit to print: credentials in it (`nats://user:pass@host`, `nats://token@host`) masked. */
export function redactUrl(url: string): string {
  return url.replace(/^((?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?)[^@/]*@/, '$1***@');
}

/** A copy of `env` without the NATS secret variables (for child processes and threads). */
export function withoutNatsSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of NATS_SECRET_ENV) delete out[k];
  return out;
}
