import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const topo = (name: string) => `${ROOT}topologies/${name}.yaml`;

/** Runs the CLI in-process and captures its output. */
export async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** Runs the real bin/rackemu.js in a child process (exit codes as a shell sees them). */
export function spawnCli(...argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [`${ROOT}bin/rackemu.js`, ...argv], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
