/**
 * `rackemu serve` as its own process (as a user starts it), for the bench cases that measure a live
 * server: started with the chips' V8 flags, resolved once GET /ready says every chip is loaded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CHIP_V8_FLAGS } from '../src/control/v8-flags.js';

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Resolves to the exit code. */
  readonly exited: Promise<number | null>;
  /** Wall seconds from the spawn to ready. */
  readonly startupS: number;
}

const bin = fileURLToPath(new URL('../../bin/rackemu.js', import.meta.url));

/** Starts `rackemu serve <args>` (with `--port 0` among them) and waits until it is ready. */
export async function startServe(args: readonly string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...CHIP_V8_FLAGS, bin, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RACKEMU_LOG: 'warn', ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /https?:\/\/[\d.:]+/.exec(out);
      if (m) resolve(m[0]);
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
  });
  for (;;) {
    const ready = await fetch(`${url}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null) throw new Error(`serve exited before ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child, exited, startupS: (performance.now() - t0) / 1000 };
}
