/**
 * A private nats-server child process for tests, benchmarks and `--nats spawn`: loopback only, on a
 * free port, killed on stop() and when this process exits.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { TransportError } from '../util/errors.js';
import { configError } from './errors.js';
import { checkNatsAuth, maskSecret, secretOf, withoutNatsSecrets } from './nats-auth.js';
import type { NatsAuth } from './types.js';

export interface SpawnNatsServerOptions {
  /** Client port; default: a free port chosen by the OS. */
  port?: number;
  /** Server max_payload in bytes (default the server's 1 MiB). */
  maxPayload?: number;
  /** nats-server binary; default $RACKEMU_NATS_SERVER, else `nats-server` on PATH. */
  bin?: string;
  /** How long to wait for the server to accept connections (default 10 s). */
  startTimeoutMs?: number;
  /**
   * Credentials the server requires of every client (default none): it is started with them in its
   * config file (mode 0600 in a private temporary directory, removed on stop), never on its command line.
   */
  auth?: NatsAuth;
  /**
   * Instead of `auth`: one user per deployment, each allowed to publish and subscribe only in its own
   * deployment's subjects (`rackemu.<deployment>.>`), so that one deployment's clients cannot reach
   * another's chips. docs/cluster.md shows the same permissions for a NATS cluster.
   */
  deploymentUsers?: readonly { readonly user: string; readonly pass: string; readonly deployment: string }[];
  /** Join a cluster: this server's route port and the other servers' route URLs. */
  cluster?: { readonly port: number; readonly routes: readonly string[] };
}

export interface SpawnedNatsServer {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Terminate the server (SIGTERM, then SIGKILL after 5 s) and remove its temporary config. */
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'install it with `apt-get install -y nats-server` (or run scripts/ensure-deps.sh); Debian puts it in /usr/sbin, ' +
  'which must be on PATH, or set RACKEMU_NATS_SERVER to the binary';

// Children still running; one exit hook kills them all so a crashed test or CLI leaves no server behind.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  child.once('exit', () => live.delete(child));
}

function unavailable(message: string, cause?: unknown, details: Record<string, unknown> = {}): TransportError {
  return new TransportError('RACKEMU_ERR_NATS_UNAVAILABLE', message, { cause, details });
}

function findBinary(explicit: string | undefined): string {
  const named = explicit ?? process.env.RACKEMU_NATS_SERVER;
  if (named) return named;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, 'nats-server');
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  throw unavailable(`nats-server is not installed (not found on PATH): ${INSTALL_HINT}`, undefined, {
    path: process.env.PATH ?? '',
  });
}

/** A port the OS just reported free on loopback (another process could still take it: callers retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True once something on the port speaks NATS (sends its INFO line). */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ port, host: '127.0.0.1' });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('data', (b: Buffer) => done(b.subarray(0, 4).toString('latin1') === 'INFO'));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A string in nats-server's config syntax (JSON's escapes are its escapes). */
const confString = (v: string): string => JSON.stringify(v);

/**
 * The config file's `authorization` block for `auth`. nats-server takes a password or token that starts
 * like a bcrypt hash ($2a$...) as one, so such values are refused rather than silently never matching.
 */
async function authorizationBlock(auth: NatsAuth): Promise<string> {
  if (/^\$2[abxy]?\$/.test(secretOf(auth))) {
    const what = auth.kind === 'user' ? 'password' : 'token';
    throw configError(`NATS credentials: a ${what} starting with $2 reads as a bcrypt hash to nats-server`, {
      path: 'auth',
    });
  }
  switch (auth.kind) {
    case 'user':
      return `authorization {\n  user: ${confString(auth.user)}\n  password: ${confString(auth.pass)}\n}\n`;
    case 'token':
      return `authorization {\n  token: ${confString(auth.token)}\n}\n`;
    case 'nkey': {
      // the server knows the user by its public key only; the NATS client is loaded just for this
      const { nkeys } = await import('@nats-io/transport-node');
      let publicKey: string;
      try {
        publicKey = nkeys.fromSeed(new TextEncoder().encode(auth.seed)).getPublicKey();
      } catch {
        throw configError('NATS credentials: the nkey seed is not a valid user seed (bad checksum or encoding)', {
          path: 'auth',
        });
      }
      return `authorization {\n  users: [{ nkey: ${confString(publicKey)} }]\n}\n`;
    }
  }
}

/** An `authorization` block of users confined to their deployment's subject tree. */
function deploymentUsersBlock(users: NonNullable<SpawnNatsServerOptions['deploymentUsers']>): string {
  const entries = users.map((u) => {
    checkNatsAuth({ kind: 'user', user: u.user, pass: u.pass });
    if (!/^[A-Za-z0-9-]+$/.test(u.deployment)) {
      throw configError(`deployment ${JSON.stringify(u.deployment)} must be letters, digits and '-'`, {
        path: 'deployment',
      });
    }
    const tree = confString(`rackemu.${u.deployment}.>`);
    const perms = `permissions: { publish: [${tree}], subscribe: [${tree}] }`;
    return `    { user: ${confString(u.user)}, password: ${confString(u.pass)}, ${perms} }`;
  });
  return `authorization {\n  users: [\n${entries.join(',\n')}\n  ]\n}\n`;
}

/** The server's config file text, or null when the defaults and the command line do. */
async function configText(opts: SpawnNatsServerOptions): Promise<string | null> {
  const lines: string[] = [];
  if (opts.maxPayload !== undefined) {
    if (!Number.isSafeInteger(opts.maxPayload) || opts.maxPayload < 64) {
      throw new TransportError(
        'RACKEMU_ERR_TRANSPORT_CONFIG',
        `maxPayload must be an integer >= 64 (got ${opts.maxPayload})`,
      );
    }
    // max_payload has no command-line flag, only a config-file key.
    lines.push(`max_payload: ${opts.maxPayload}\n`);
  }
  const auth = checkNatsAuth(opts.auth);
  if (auth && opts.deploymentUsers) throw configError('give auth or deploymentUsers, not both', { path: 'auth' });
  if (auth) lines.push(await authorizationBlock(auth));
  if (opts.deploymentUsers) lines.push(deploymentUsersBlock(opts.deploymentUsers));
  return lines.length > 0 ? lines.join('') : null;
}

export async function spawnNatsServer(opts: SpawnNatsServerOptions = {}): Promise<SpawnedNatsServer> {
  const bin = findBinary(opts.bin);
  let confDir: string | undefined;
  const args: string[] = [];
  const text = await configText(opts);
  if (text !== null) {
    // mkdtemp makes the directory 0700; the file may hold credentials, so 0600 as well
    confDir = await mkdtemp(join(tmpdir(), 'rackemu-nats-'));
    const conf = join(confDir, 'nats.conf');
    await writeFile(conf, text, { mode: 0o600 });
    args.push('-c', conf);
  }
  const cleanup = async (): Promise<void> => {
    if (confDir) await rm(confDir, { recursive: true, force: true });
  };
  // A port picked by us can be taken by someone else before the server binds it: retry a few times.
  const attempts = opts.port === undefined ? 3 : 1;
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await freePort());
    try {
      return await start(
        bin,
        [...args, '-a', '127.0.0.1', '-p', String(port), ...clusterArgs(opts.cluster)],
        port,
        opts.startTimeoutMs ?? 10_000,
        cleanup,
        (text) => maskSecret(text, opts.auth),
      );
    } catch (e) {
      lastErr = e;
      if ((e as TransportError).details?.reason !== 'exited') break;
    }
  }
  await cleanup();
  throw lastErr;
}

async function start(
  bin: string,
  args: string[],
  port: number,
  timeoutMs: number,
  cleanup: () => Promise<void>,
  mask: (text: string) => string,
): Promise<SpawnedNatsServer> {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: withoutNatsSecrets(process.env) });
  let stderrTail = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderrTail = (stderrTail + b.toString('utf8')).slice(-4096);
  });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: NodeJS.ErrnoException | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
      resolve();
    });
  });
  track(child);

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError) {
      throw unavailable(
        spawnError.code === 'ENOENT'
          ? `nats-server binary ${bin} does not exist: ${INSTALL_HINT}`
          : `cannot start nats-server (${bin}): ${spawnError.message}`,
        spawnError,
        { bin },
      );
    }
    if (exited) {
      throw unavailable(
        `nats-server exited during start-up (code ${exited.code}, signal ${exited.signal}): ${mask(stderrTail.trim().slice(-600))}`,
        undefined,
        {
          bin,
          port,
          reason: 'exited',
        },
      );
    }
    if (await probe(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw unavailable(`nats-server did not accept connections on port ${port} within ${timeoutMs} ms`, undefined, {
        bin,
        port,
      });
    }
    await sleep(25);
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop(): Promise<void> {
      stopping ??= (async () => {
        if (!exited && !spawnError) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exitPromise;
          clearTimeout(t);
        }
        await cleanup();
      })();
      return stopping;
    },
  };
}

function clusterArgs(c: SpawnNatsServerOptions['cluster']): string[] {
  if (c === undefined) return [];
  return ['--cluster_name', 'rackemu', '--cluster', `nats://127.0.0.1:${c.port}`, '--routes', c.routes.join(',')];
}

export interface SpawnedNatsCluster {
  readonly servers: readonly SpawnedNatsServer[];
  /** Every server's client URL, comma-separated: clients fail over between them. */
  readonly url: string;
  stop(): Promise<void>;
}

/** `size` nats-servers on this machine routed into one cluster (fault campaigns stop one of them). */
export async function spawnNatsCluster(
  size: number,
  opts: Omit<SpawnNatsServerOptions, 'cluster' | 'port'> = {},
): Promise<SpawnedNatsCluster> {
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const servers: SpawnedNatsServer[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`);
      servers.push(await spawnNatsServer({ ...opts, cluster: { port: routePorts[i], routes } }));
    }
  } catch (e) {
    await Promise.allSettled(servers.map((s) => s.stop()));
    throw e;
  }
  return {
    servers,
    url: servers.map((s) => s.url).join(','),
    stop: async () => {
      await Promise.allSettled(servers.map((s) => s.stop()));
    },
  };
}
