// Shared fixtures of the serve tests: a real `rackemu serve` child process (bin/rackemu.js, as a user
// starts it), its URL, its logs, and a clean stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT, topo } from './helpers/cli.js';

/** mixtral-tiny on 8 chips of mini-2rack with `batch` slots of 64 tokens (numeric fidelity unless flags say). */
export function tinyArgs(batch = 4): string[] {
  return [
    '--topology',
    topo('mini-2rack'),
    '--model',
    'mixtral-tiny',
    '--context',
    '64',
    '--batch',
    String(batch),
    '--set',
    'chip.sram_mib=0.5',
    // the layout the fault-injection tests' targets are chosen for
    '--layout-search',
    'classic',
  ];
}

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the server wrote on stderr so far (pino JSON lines). */
  stderr(): string;
  /** The server's log lines with this message. */
  events(msg: string): Record<string, unknown>[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for the exit (SIGKILL if it takes longer than the timeout). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `rackemu serve <args> --port 0` and resolves once it listens (before its chips are loaded). */
export function startServe(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [`${ROOT}bin/rackemu.js`, 'serve', ...args, '--port', '0'], {
    env: { ...process.env, RACKEMU_LOG: 'info', RACKEMU_ADMIN_TOKEN: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const events = (msg: string) =>
    err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.msg === msg);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not listen within 60 s; stderr:\n${err}`)), 60_000);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening; stdout:\n${out}\nstderr:\n${err}`));
    });
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        url: m[1],
        child,
        stderr: () => err,
        events,
        exited,
        async stop(timeoutMs = 60_000) {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          const r = await exited;
          clearTimeout(kill);
          return r;
        },
      });
    });
  });
}

/** Polls GET /ready until 200; returns every status seen (503 while the chips load). */
export async function waitReady(url: string, timeoutMs = 120_000): Promise<number[]> {
  const seen: number[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const status = (await fetch(`${url}/ready`)).status;
    seen.push(status);
    if (status === 200) return seen;
    if (Date.now() > end) throw new Error(`not ready after ${timeoutMs} ms: ${seen.join(' ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** POST a JSON body (a string is sent as is) and return status, headers and the parsed body. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const r = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The `data:` payloads of a server-sent event stream, [DONE] included. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}
