#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript (npm install runs `prepare`, which builds dist/).
// Commands that run chips need V8 flags on node's command line (src/control/v8-flags.ts says why):
// without them, node is started again with them, and this process only relays signals and the exit.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { missingChipV8Flags } from '../dist/src/control/v8-flags.js';

const argv = process.argv.slice(2);
const RUNS_CHIPS = new Set(['generate', 'serve', 'host', 'experiment']);
// the command is the first word that is not an option (`rackemu --verbose serve ...`)
const missing = RUNS_CHIPS.has(argv.find((a) => !a.startsWith('-'))) ? missingChipV8Flags() : [];
if (missing.length === 0) {
  // loaded only here: a launcher that starts node again has no use for the CLI itself
  const { main } = await import('../dist/src/cli/main.js');
  process.exitCode = await main(argv);
} else {
  const child = spawn(process.execPath, [...process.execArgv, ...missing, fileURLToPath(import.meta.url), ...argv], {
    stdio: 'inherit',
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) {
      // die of the same signal, as a shell expects
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exitCode = code ?? 1;
  });
}
