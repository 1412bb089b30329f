import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { NatsAuth } from '../transport/index.js';
import { UsageError, type ErrorCode } from '../util/errors.js';

/**
 * NATS credentials for generate and serve. Secrets never come from a flag's value, which any user of
 * the machine can read in `ps`: a password or token from an environment variable, an nkey seed from a
 * file (as the `nats` CLI's --nkey). One kind at a time:
 *   --nats-user NAME       password from $RACKEMU_NATS_PASSWORD
 *   $RACKEMU_NATS_TOKEN    a token (no flag needed)
 *   --nats-nkey FILE       the file holds the user seed SU... (as `nk -gen user` writes it)
 */
export interface NatsAuthFlags {
  natsUser?: string;
  natsNkey?: string;
}

export function addNatsAuthFlags(cmd: Command): Command {
  return cmd
    .option('--nats-user <name>', 'NATS user name; its password is read from $RACKEMU_NATS_PASSWORD')
    .option(
      '--nats-nkey <file>',
      'NATS nkey user: a file holding its seed (SU...); a token comes from $RACKEMU_NATS_TOKEN',
    );
}

const SEED = /\bSU[A-Z2-7]{56}\b/;

/**
 * The credentials the flags and environment give (undefined: none). Throws UsageError `code` for a
 * user without a password, an unreadable or seedless nkey file, or more than one kind; no message
 * carries a secret.
 */
export function natsAuthFromFlags(
  flags: NatsAuthFlags,
  code: ErrorCode,
  env: NodeJS.ProcessEnv = process.env,
): NatsAuth | undefined {
  const given: NatsAuth[] = [];
  if (flags.natsUser !== undefined) {
    const pass = env.RACKEMU_NATS_PASSWORD;
    if (!flags.natsUser || !pass) {
      throw new UsageError(
        code,
        '--nats-user needs a user name, and its password in the environment variable RACKEMU_NATS_PASSWORD (a password is never a flag: it would show in ps)',
        { details: { path: '--nats-user', expected: 'RACKEMU_NATS_PASSWORD set' } },
      );
    }
    given.push({ kind: 'user', user: flags.natsUser, pass });
  }
  if (env.RACKEMU_NATS_TOKEN) given.push({ kind: 'token', token: env.RACKEMU_NATS_TOKEN });
  if (flags.natsNkey !== undefined) given.push({ kind: 'nkey', seed: readSeed(flags.natsNkey, code) });
  if (given.length > 1) {
    const kinds = given.map((a) => a.kind).join(' and ');
    throw new UsageError(
      code,
      `give one kind of NATS credentials, not ${kinds} (--nats-user with RACKEMU_NATS_PASSWORD, RACKEMU_NATS_TOKEN, or --nats-nkey)`,
      { details: { path: '--nats-user | RACKEMU_NATS_TOKEN | --nats-nkey', got: kinds } },
    );
  }
  return given[0];
}

function readSeed(file: string, code: ErrorCode): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(code, `--nats-nkey: cannot read ${file}: ${(e as Error).message}`, {
      details: { path: '--nats-nkey', file },
      cause: e,
    });
  }
  const seed = SEED.exec(text)?.[0];
  if (!seed) {
    throw new UsageError(code, `--nats-nkey: ${file} holds no nkey user seed (58 characters starting with SU)`, {
      details: { path: '--nats-nkey', file, expected: 'SU...' },
    });
  }
  return seed;
}
