import { spawn } from 'node:child_process';
import type { LayoutSearch } from '../../src/compiler/plan.js';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { main } from '../../src/cli/main.js';
import { deployedChips } from '../../src/control/chip-inits.js';
import { setup } from './deploy.js';
import { findBinary } from './prometheus.js';

/**
 * Helpers of the deploy/ tests (deploy-compose.test.ts, deploy-k8s.test.ts): the rackemu command lines
 * the files use, checked against the CLI's own options; the hosts a coordinator's Plan needs; and real
 * nats-server processes started from the files' NATS configuration, with the checks of "no anonymous
 * access" and per-deployment subject permissions.
 */

/**
 * Flags of the target architecture that this version may not have yet (docs/cluster.md, "Commands"):
 * accepted while the CLI lacks them, checked like any other flag once it has them. Every one is named
 * in docs/cluster.md.
 */
export const PENDING_FLAGS: Readonly<Record<string, readonly string[]>> = {};

/** A long option of a rackemu command, and its allowed values when it has a fixed set. */
export type CliOptions = Map<string, readonly string[] | null>;

const helpCache = new Map<string, Promise<CliOptions | null>>();

/** The options `rackemu <command> --help` lists (null: no such command), read from the help text. */
export function cliOptions(command: string): Promise<CliOptions | null> {
  let p = helpCache.get(command);
  if (!p) {
    p = (async () => {
      let out = '';
      const code = await main([command, '--help'], { out: (s) => void (out += s), err: () => undefined });
      if (code !== 0 || !out.includes('Options:')) return null;
      const entries: string[] = [];
      for (const line of out.slice(out.indexOf('Options:')).split('\n').slice(1)) {
        if (/^\s{2}(?:-\w, )?--[\w-]+/.test(line)) entries.push(line);
        else if (entries.length > 0 && line.trim()) entries[entries.length - 1] += ` ${line.trim()}`;
      }
      const options: CliOptions = new Map();
      for (const e of entries) {
        const flag = /--[\w-]+/.exec(e)![0];
        const choices = /\(choices: ((?:"[^"]*",?\s*)+)/.exec(e);
        options.set(flag, choices ? [...choices[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]) : null);
      }
      return options;
    })();
    helpCache.set(command, p);
  }
  return p;
}

/** `--name=value` arguments as [name, value]; bare `--name` as [name, '']. */
export function flagsOf(args: readonly string[]): [string, string][] {
  return args.map((a) => {
    const eq = a.indexOf('=');
    return eq < 0 ? [a, ''] : [a.slice(0, eq), a.slice(eq + 1)];
  });
}

/**
 * What is wrong with a rackemu command line (`args[0]` the command, the rest `--flag=value`): an
 * unknown command, a flag the command does not have (unless pending), a value outside its choices.
 * `pending` lists the pending flags it used that this version lacks.
 */
export async function checkRackemuArgs(args: readonly string[]): Promise<{ problems: string[]; pending: string[] }> {
  const [command, ...rest] = args;
  const problems: string[] = [];
  const pending: string[] = [];
  const options = await cliOptions(command);
  if (options === null) return { problems: [`rackemu ${command}: no such command`], pending };
  for (const [flag, value] of flagsOf(rest)) {
    if (!flag.startsWith('--')) {
      problems.push(`rackemu ${command}: ${flag}: write flags as --name=value`);
      continue;
    }
    if (!options.has(flag)) {
      if (PENDING_FLAGS[command]?.includes(flag)) pending.push(`${command} ${flag}`);
      else problems.push(`rackemu ${command} has no option ${flag}`);
      continue;
    }
    const choices = options.get(flag);
    if (choices && !choices.includes(value)) {
      problems.push(`rackemu ${command} ${flag}=${value}: expected one of ${choices.join(', ')}`);
    }
  }
  return { problems, pending };
}

/** The values of a repeatable flag, and the value of a single one. */
export const flagValues = (args: readonly string[], name: string): string[] =>
  flagsOf(args)
    .filter(([f]) => f === name)
    .map(([, v]) => v);
export const flagValue = (args: readonly string[], name: string): string | undefined => flagValues(args, name)[0];

/**
 * The host ids a `serve` command line's Plan needs, in the order the coordinator numbers them (a host
 * agent's --ordinal): `topologyFile` is where the command's --topology is in this repository.
 */
export function plannedHosts(serveArgs: readonly string[], topologyFile: string): string[] {
  const num = (name: string) => {
    const v = flagValue(serveArgs, name);
    return v === undefined ? undefined : Number(v);
  };
  const s = setup(topologyFile, flagValue(serveArgs, '--model')!, flagValues(serveArgs, '--set'), {
    numeric: false,
    batch: num('--batch'),
    context: num('--context'),
    layoutSearch: flagValue(serveArgs, '--layout-search') as LayoutSearch | undefined,
  });
  return [...new Set(deployedChips(s.plan, s.fabric).map((c) => s.fabric.hostId(c)))];
}

/** Every string of a parsed YAML document (its values; comments are gone, as compose never reads them). */
export function yamlStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(yamlStrings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(yamlStrings);
  return [];
}

/** Every `${NAME...}` (or `$NAME`) in compose values: its name, whether it has a default, whether it is required. */
export function composeVariables(
  values: readonly string[],
): { name: string; hasDefault: boolean; required: boolean }[] {
  const out: { name: string; hasDefault: boolean; required: boolean }[] = [];
  for (const text of values) {
    const unescaped = text.replaceAll('$$', '');
    for (const m of unescaped.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
      const op = m[2] ?? '';
      out.push({ name: m[1] ?? m[3], hasDefault: op.endsWith('-'), required: op.endsWith('?') });
    }
  }
  return out;
}

/** Compose's interpolation of `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?msg}` in one value. */
export function interpolate(text: string, env: Readonly<Record<string, string>>): string {
  return text
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([^}]*))?\}/g, (_, name: string, colon, op, arg: string) => {
      const v = env[name];
      const unset = v === undefined || (colon === ':' && v === '');
      if (op === '-') return unset ? arg : v;
      if (op === '?' && unset) throw new Error(`compose would refuse to start: ${name} is unset (${arg})`);
      return v ?? '';
    })
    .replaceAll('$$', '$');
}

/** A parsed compose document with every string value interpolated from `env`. */
export function interpolateTree<T>(value: T, env: Readonly<Record<string, string>>): T {
  if (typeof value === 'string') return interpolate(value, env) as T;
  if (Array.isArray(value)) return value.map((v) => interpolateTree(v, env)) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateTree(v, env)])) as T;
  return value;
}

/** KEY=value lines of an env file (comments and blank lines skipped). */
export function readEnvFile(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

/** A nats-server child process on 127.0.0.1. */
export interface NatsProcess {
  readonly url: string;
  readonly monitorUrl: string;
  /** Everything it logged so far. */
  log(): string;
  stop(): Promise<void>;
}

export function natsServerBinary(): string {
  const bin = process.env.RACKEMU_NATS_SERVER || findBinary('nats-server');
  if (!bin || !existsSync(bin))
    throw new Error('nats-server is not installed: run scripts/ensure-deps.sh (apt-get install nats-server)');
  return bin;
}

/** Starts nats-server with `args` (client port `port`, monitoring `monitorPort`) and waits until it is healthy. */
export async function startNatsServer(
  args: readonly string[],
  ports: { port: number; monitorPort: number },
  env: Readonly<Record<string, string>>,
): Promise<NatsProcess> {
  const child = spawn(
    natsServerBinary(),
    [...args, '-a', '127.0.0.1', '-p', String(ports.port), '-m', String(ports.monitorPort)],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const monitorUrl = `http://127.0.0.1:${ports.monitorPort}`;
  const proc: NatsProcess = {
    url: `nats://127.0.0.1:${ports.port}`,
    monitorUrl,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + 8000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server ${args.join(' ')} exited ${child.exitCode}:\n${log}`);
    const ok = await fetch(`${monitorUrl}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return proc;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`nats-server did not become healthy:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the server behind `monitorUrl` has `n` routes; returns its /routez. */
export async function waitForRoutes(monitorUrl: string, n: number, timeoutMs = 8000): Promise<{ num_routes: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const routez = (await (await fetch(`${monitorUrl}/routez`)).json()) as { num_routes: number };
    if (routez.num_routes >= n || Date.now() > deadline) return routez;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Connects with a user and password (none: anonymous); resolves to the connection or the refusal. */
export async function natsConnect(
  url: string,
  creds?: { user: string; pass: string },
): Promise<{ nc: NatsConnection } | { refused: string }> {
  try {
    const nc = await connect({ servers: url, timeout: 3000, reconnect: false, ...creds });
    return { nc };
  } catch (e) {
    return { refused: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

/**
 * Publishes to `subject` and subscribes to it; resolves to the permission violations the server
 * reported for it (publish, subscription), after a round trip to the server.
 */
export async function permissionViolations(nc: NatsConnection, subject: string): Promise<string[]> {
  const seen: string[] = [];
  const watching = (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error.name === 'PermissionViolationError' && s.error.message.includes(subject))
        seen.push(s.error.message);
    }
  })();
  const sub = nc.subscribe(subject, { callback: () => undefined });
  nc.publish(subject, new Uint8Array([1]));
  await nc.flush();
  // the server answers a violation before the flush's PONG; the status reaches the iterator a moment later
  const deadline = Date.now() + 500;
  while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  sub.unsubscribe();
  void watching;
  return seen;
}

/** The data `sub` receives on `subject` while `pub` publishes there (null: nothing within 3 s). */
export async function deliver(sub: NatsConnection, pub: NatsConnection, subject: string): Promise<string | null> {
  const got: { data: string | null } = { data: null };
  sub.subscribe(subject, {
    max: 1,
    callback: (_, m) => {
      got.data = m.string();
    },
  });
  await sub.flush();
  // interest travels to the cluster's other servers asynchronously: publish until a message arrives
  const deadline = Date.now() + 3000;
  while (got.data === null && Date.now() < deadline) {
    pub.publish(subject, 'hello');
    await pub.flush();
    await new Promise((r) => setTimeout(r, 50));
  }
  return got.data;
}

/** A conf file value as nats-server reads it: the chart's `<< x >>` strings written unquoted, the rest JSON. */
export function renderNatsConf(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/"<<\s*(.*?)\s*>>"/g, '$1');
}
